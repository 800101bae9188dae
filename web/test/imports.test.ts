/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

import { findCycles, importGraph, importSpecifiers, resolveImport } from "./import-graph";

// Every module of the client as text (Vite reads them at build time of the test), by path from web/.
const sources = Object.fromEntries(
  Object.entries(
    import.meta.glob<string>("../src/**/*.{ts,tsx}", { query: "?raw", import: "default", eager: true }),
  ).map(([path, source]) => [path.replace(/^\.\.\//, ""), source]),
);

describe("import cycles", () => {
  it("there is none among the modules of web/src", () => {
    const graph = importGraph(sources);
    // The check sees the modules and their imports (not an empty glob or a parser that finds nothing).
    expect(graph.get("src/main.tsx")).toContain("src/ui/app.tsx");
    expect(graph.get("src/api/client.ts")).toContain("src/api/types.ts");
    const cycles = findCycles(graph).map((cycle) => cycle.join(" → "));
    expect(cycles, `import cycles in web/src:\n${cycles.join("\n")}`).toEqual([]);
  });

  it("the detector finds a cycle, and none where there is none", () => {
    const cyclic = new Map([
      ["a", ["b"]],
      ["b", ["c", "d"]],
      ["c", ["a"]],
      ["d", []],
    ]);
    expect(findCycles(cyclic)).toEqual([["a", "b", "c", "a"]]);
    // A diamond (two paths to one module) is no cycle; a module importing itself is one.
    const diamond = new Map([
      ["a", ["b", "c"]],
      ["b", ["d"]],
      ["c", ["d"]],
      ["d", []],
    ]);
    expect(findCycles(diamond)).toEqual([]);
    expect(findCycles(new Map([["a", ["a"]]]))).toEqual([["a", "a"]]);
  });

  it("reads and resolves imports as TypeScript does", () => {
    const source = [
      'import { a } from "./a";',
      "import type {\n  B,\n  C,\n} from '../b';",
      'export * from "./c";',
      'import "./d.css";',
      'const e = await import("./e");',
      'import { h } from "preact";',
      'const text = "not an import";',
    ].join("\n");
    expect(importSpecifiers(source).sort()).toEqual(["../b", "./a", "./c", "./d.css", "./e", "preact"]);
    const files = new Set(["src/x/a.ts", "src/b.tsx", "src/x/c/index.ts", "src/x/e.d.ts"]);
    expect(resolveImport("src/x/y.ts", "./a", files)).toBe("src/x/a.ts");
    expect(resolveImport("src/x/y.ts", "../b", files)).toBe("src/b.tsx");
    expect(resolveImport("src/x/y.ts", "./c", files)).toBe("src/x/c/index.ts");
    expect(resolveImport("src/x/y.ts", "./e", files)).toBe("src/x/e.d.ts");
    expect(resolveImport("src/x/y.ts", "./d.css", files)).toBeNull();
    expect(resolveImport("src/x/y.ts", "preact", files)).toBeNull();
    const graph = importGraph({ "src/a.ts": 'import { b } from "./b";', "src/b.ts": 'import type { A } from "./a";' });
    expect(findCycles(graph)).toEqual([["src/a.ts", "src/b.ts", "src/a.ts"]]);
  });
});
