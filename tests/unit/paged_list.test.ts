import assert from "node:assert/strict";
import type * as k8s from "@kubernetes/client-node";
import { listInPages, type PageRequest } from "../../src/watching/paged_list.ts";

function item(name: string): k8s.KubernetesObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name } };
}

for (
  const [form, meta] of [
    // client-node's typed API renames `continue`; custom objects arrive as sent.
    ["typed (_continue)", (token: string) => ({ resourceVersion: "42", _continue: token })],
    ["as sent (continue)", (token: string) => ({ resourceVersion: "42", continue: token })],
  ] as const
) {
  Deno.test(`listInPages follows the continue token, ${form}, a page at a time`, async () => {
    const pages = [[item("a"), item("b")], [item("c"), item("d")], [item("e")]];
    const asked: PageRequest[] = [];
    const seen: string[] = [];
    const result = await listInPages(
      (request) => {
        asked.push(request);
        // Each page is handed on before the next is asked for.
        assert.equal(seen.length, asked.length === 1 ? 0 : (asked.length - 1) * 2);
        const index = asked.length - 1;
        const last = index === pages.length - 1;
        return Promise.resolve({
          metadata: meta(last ? "" : `token-${index + 1}`),
          items: pages[index],
        } as k8s.KubernetesListObject<k8s.KubernetesObject>);
      },
      (items) => seen.push(...items.map((i) => i.metadata!.name!)),
      2,
    );
    assert.deepEqual(seen, ["a", "b", "c", "d", "e"]);
    assert.deepEqual(asked, [
      { limit: 2, continueToken: undefined },
      { limit: 2, continueToken: "token-1" },
      { limit: 2, continueToken: "token-2" },
    ]);
    assert.equal(result.resourceVersion, "42");
  });
}

Deno.test("listInPages passes a failed page on, after the pages before it", async () => {
  const seen: string[] = [];
  let calls = 0;
  await assert.rejects(
    listInPages(() => {
      calls++;
      if (calls === 2) return Promise.reject(new Error("410: continue token expired"));
      return Promise.resolve({ metadata: { _continue: "t" }, items: [item("a")] });
    }, (items) => seen.push(...items.map((i) => i.metadata!.name!))),
    /continue token expired/,
  );
  assert.deepEqual(seen, ["a"]);
});
