/// <reference types="vite/client" />
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { describe, expect, it } from "vitest";

import checkedIn from "../src/api/schema.d.ts?raw";

describe("src/api/schema.d.ts", () => {
  it("is what openapi-typescript makes of openapi.yaml now", async () => {
    // As `npm run api-types` writes it: the CLI's header, and openapiTS with the CLI's defaults (no
    // flags; the CLI's Redocly config only lints differently, which changes no output).
    const generated = COMMENT_HEADER + astToString(await openapiTS(new URL("../../openapi.yaml", import.meta.url), { silent: true }));
    expect(
      checkedIn === generated,
      "src/api/schema.d.ts is not what openapi.yaml generates: run `npm run api-types` in web/ (and fix what tsc then finds)",
    ).toBe(true);
  }, 30_000);
});
