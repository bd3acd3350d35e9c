/**
 * Loads Kubernetes manifests from files and directories (YAML or JSON,
 * multi-document, `List` kinds) into a cluster snapshot. Bad documents
 * become errors; everything readable is still loaded.
 */
import { isMap, isScalar, isSeq, parseAllDocuments } from "yaml";
import { quote } from "../log/quote.ts";
import { objectName, type ParsedObject, parseObjects } from "./parse.ts";
import type { ClusterState, ObjectError } from "./types.ts";

/** A snapshot loaded from disk, with the problems found while loading. */
export interface LoadedManifests {
  state: ClusterState;
  errors: ObjectError[];
  /** Problems that change nothing, such as unknown fields the API server would drop. */
  warnings: ObjectError[];
}

/** A key written twice in one YAML or JSON map, and the path of that map. */
interface DuplicateKey {
  path: string;
  key: string;
}

/** Every map key written twice under `node`, depth first. */
function duplicateKeys(node: unknown, path: string, out: DuplicateKey[] = []): DuplicateKey[] {
  if (isMap(node)) {
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (seen.has(key)) out.push({ path, key });
      seen.add(key);
      duplicateKeys(pair.value, path === "" ? key : `${path}.${key}`, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => duplicateKeys(item, `${path}[${i}]`, out));
  }
  return out;
}

const MANIFEST_EXTENSIONS = /\.(ya?ml|json)$/i;

async function listFiles(path: string, errors: ObjectError[]): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    errors.push({ object: path, field: "(file)", message: (error as Error).message });
    return [];
  }
  if (!info.isDirectory) return [path];
  const files: string[] = [];
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(path)) entries.push(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const child = `${path.replace(/\/$/, "")}/${entry.name}`;
    if (entry.isDirectory) { for (const file of await listFiles(child, errors)) files.push(file); }
    else if (MANIFEST_EXTENSIONS.test(entry.name)) files.push(child);
  }
  return files;
}

/** Parses the text of one manifest file into objects. */
export function parseManifestText(text: string, source: string): {
  objects: ParsedObject[];
  errors: ObjectError[];
  warnings: ObjectError[];
} {
  const objects: ParsedObject[] = [];
  const errors: ObjectError[] = [];
  const warnings: ObjectError[] = [];
  const documents = parseAllDocuments(text, { uniqueKeys: false });
  const list = Array.isArray(documents) ? documents : [documents];
  list.forEach((doc, i) => {
    const where = `${source} document ${i + 1}`;
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      errors.push({
        object: where,
        field: "(yaml)",
        message: `invalid YAML: ${
          first.message.split("\n")[0].replace(/:$/, "")
        }; document skipped`,
      });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      errors.push({ object: where, field: "(yaml)", message: (error as Error).message });
      return;
    }
    const duplicates = duplicateKeys(doc.contents, "");
    if (duplicates.length > 0) {
      const object = `${objectName(value)} (${where})`;
      for (const { path, key } of duplicates) {
        errors.push({
          object,
          field: path === "" ? "(root)" : path,
          message: `duplicate key ${quote(key)}; object rejected, as the API server rejects it`,
        });
      }
      return;
    }
    const parsed = parseObjects(value, where);
    for (const item of parsed.objects) objects.push(item);
    for (const item of parsed.errors) errors.push(item);
    for (const item of parsed.warnings) warnings.push(item);
  });
  return { objects, errors, warnings };
}

/** Builds a snapshot from parsed objects; later duplicates replace earlier ones. */
export function stateFromObjects(objects: ParsedObject[]): ClusterState {
  const pods = new Map<string, ClusterState["pods"][number]>();
  const namespaces = new Map<string, ClusterState["namespaces"][number]>();
  const networks = new Map<string, ClusterState["networks"][number]>();
  const policies = new Map<string, ClusterState["policies"][number]>();
  for (const object of objects) {
    switch (object.kind) {
      case "Pod":
        pods.set(`${object.value.namespace}/${object.value.name}`, object.value);
        break;
      case "Namespace":
        namespaces.set(object.value.name, object.value);
        break;
      case "NetworkAttachmentDefinition":
        networks.set(`${object.value.namespace}/${object.value.name}`, object.value);
        break;
      case "MultiNetworkPolicy":
        policies.set(`${object.value.namespace}/${object.value.name}`, object.value);
        break;
    }
  }
  return {
    pods: [...pods.values()],
    namespaces: [...namespaces.values()],
    networks: [...networks.values()],
    policies: [...policies.values()],
  };
}

/** Reads every manifest under the given files or directories. */
export async function loadManifests(paths: string[]): Promise<LoadedManifests> {
  const errors: ObjectError[] = [];
  const warnings: ObjectError[] = [];
  const objects: ParsedObject[] = [];
  for (const path of paths) {
    for (const file of await listFiles(path, errors)) {
      let text: string;
      try {
        text = await Deno.readTextFile(file);
      } catch (error) {
        errors.push({ object: file, field: "(file)", message: (error as Error).message });
        continue;
      }
      const parsed = parseManifestText(text, file);
      for (const item of parsed.objects) objects.push(item);
      for (const item of parsed.errors) errors.push(item);
      for (const item of parsed.warnings) warnings.push(item);
    }
  }
  return { state: stateFromObjects(objects), errors, warnings };
}
