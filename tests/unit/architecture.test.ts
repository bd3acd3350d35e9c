/**
 * The folder layering of docs/architecture.md holds: every folder under src/
 * has a layer, and no import climbs to a folder of the same or a higher layer.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/** The layer table between the markers of docs/architecture.md. */
async function layers(): Promise<Map<string, number>> {
  const text = await Deno.readTextFile(new URL("docs/architecture.md", ROOT));
  const block = text.split("<!-- layers:begin -->")[1]?.split("<!-- layers:end -->")[0] ?? "";
  const out = new Map<string, number>();
  for (const match of block.matchAll(/^\|\s*(\d+)\s*\|\s*`([a-z_]+)`/gm)) {
    out.set(match[2], Number(match[1]));
  }
  return out;
}

async function* sourceFiles(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* sourceFiles(url);
    else if (entry.name.endsWith(".ts")) yield url;
  }
}

/** The src/ folder a file URL belongs to, or null outside src/. */
function folderOf(url: URL): string | null {
  const rel = url.pathname.slice(new URL("src/", ROOT).pathname.length);
  return url.pathname.startsWith(new URL("src/", ROOT).pathname) ? rel.split("/")[0] : null;
}

/** Every relative import of a source file, resolved. */
async function importsOf(file: URL): Promise<URL[]> {
  const text = await Deno.readTextFile(file);
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)];
  return specs.map((m) => new URL(m[1], file));
}

/** The imports that climb a layer, as `file -> target` lines. */
async function violations(order: Map<string, number>): Promise<string[]> {
  const out: string[] = [];
  for await (const file of sourceFiles(new URL("src/", ROOT))) {
    const from = folderOf(file)!;
    for (const target of await importsOf(file)) {
      const to = folderOf(target);
      if (to === null || to === from) continue;
      if (!(order.get(to)! < order.get(from)!)) {
        out.push(`${file.pathname.slice(ROOT.pathname.length)} -> src/${to}/`);
      }
    }
  }
  return out.sort();
}

Deno.test("architecture: every src/ folder has a layer in docs/architecture.md", async () => {
  const order = await layers();
  const folders: string[] = [];
  for await (const entry of Deno.readDir(new URL("src/", ROOT))) {
    if (entry.isDirectory) folders.push(entry.name);
  }
  assert.deepEqual(folders.filter((f) => !order.has(f)), []);
  assert.deepEqual([...order.keys()].filter((f) => !folders.includes(f)), []);
});

Deno.test("architecture: no import climbs a layer", async () => {
  assert.deepEqual(await violations(await layers()), []);
});

Deno.test("architecture: the check catches an import that climbs", async () => {
  const order = await layers();
  order.set("policy", order.get("agent")! + 1);
  const found = await violations(order);
  assert.ok(found.some((line) => line.endsWith("-> src/policy/")), found.join("\n"));
});
