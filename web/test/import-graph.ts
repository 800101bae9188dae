// The relative imports between the client's modules, and the cycles among them (for imports.test.ts).
// Paths are POSIX and relative to web/ (`src/ui/app.tsx`); imports of packages are left out.

/** The specifiers of a module's imports and re-exports (static, side-effect and dynamic). */
export function importSpecifiers(source: string): string[] {
  const patterns = [
    // `import x from "m"`, `import type { A, B } from "m"` (over several lines), `export * from "m"`.
    /^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/gm,
    // `import "m"` (side effects only).
    /^\s*import\s*["']([^"']+)["']/gm,
    // `import("m")`.
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((m) => m[1]));
}

/** `dir/a/../b/./c` as `dir/b/c`. */
function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "." && part !== "") parts.push(part);
  }
  return parts.join("/");
}

/** The module `specifier` names from `from`, as TypeScript resolves it among `files`; null if none. */
export function resolveImport(from: string, specifier: string, files: Set<string>): string | null {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return null;
  const base = normalize(`${from.slice(0, from.lastIndexOf("/") + 1)}${specifier}`);
  const candidates = [base, ".ts", ".tsx", ".d.ts", "/index.ts", "/index.tsx"].map((ext, i) => (i === 0 ? base : base + ext));
  return candidates.find((path) => files.has(path)) ?? null;
}

/** Each module's imports among the modules given (source text by path). */
export function importGraph(sources: Record<string, string>): Map<string, string[]> {
  const files = new Set(Object.keys(sources));
  const graph = new Map<string, string[]>();
  for (const [path, source] of Object.entries(sources)) {
    const targets = importSpecifiers(source)
      .map((specifier) => resolveImport(path, specifier, files))
      .filter((target): target is string => target !== null);
    graph.set(path, [...new Set(targets)].sort());
  }
  return graph;
}

/**
 * The import cycles a depth-first search meets, one per edge back to a module still on the path, each
 * as its modules in import order ending with the first again (`a → b → a`). Empty: no cycle.
 */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    path.push(node);
    onPath.add(node);
    for (const next of graph.get(node) ?? []) {
      if (onPath.has(next)) cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (!done.has(next)) visit(next);
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) if (!done.has(node)) visit(node);
  return cycles;
}
