// This module's URL. The CommonJS build has no import.meta: the Makefile's `ts`
// target rewrites the line below in dist/cjs to the __filename equivalent.
// @ts-ignore TS1343 is reported by the CommonJS build only
export const moduleUrl: string = import.meta.url;
