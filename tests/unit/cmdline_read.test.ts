/**
 * The `cmdline` driver's read, against a stand-in `tc` that prints captured-style
 * JSON: each filter's cookie and skip_hw land in the filter, `in_hw` /
 * `not_in_hw` / `in_hw_count` in the state's offload map, counters beside them.
 */
import assert from "node:assert/strict";
import { CmdlineDriver } from "../../src/drivers/cmdline/driver.ts";
import { OWNER_COOKIE } from "../../src/tc/model.ts";
import { OFFLOAD_SAMPLE } from "../support/tc_json_samples.ts";

/** A `tc` script in a fresh folder that answers the driver's three reads from files. */
async function fakeTc(ingress: string): Promise<{ path: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "mnp-tc-fake-" });
  await Deno.writeTextFile(`${dir}/qdisc.json`, `[{"kind":"clsact","handle":"ffff:"}]`);
  await Deno.writeTextFile(`${dir}/ingress.json`, ingress);
  await Deno.writeTextFile(`${dir}/egress.json`, "[]");
  const path = `${dir}/tc`;
  await Deno.writeTextFile(
    path,
    [
      "#!/bin/sh",
      `case "$*" in`,
      `  "-json qdisc show dev rep0") cat "${dir}/qdisc.json" ;;`,
      `  "-s -json filter show dev rep0 ingress") cat "${dir}/ingress.json" ;;`,
      `  "-s -json filter show dev rep0 egress") cat "${dir}/egress.json" ;;`,
      `  *) echo "unexpected: $*" >&2; exit 1 ;;`,
      "esac",
      "",
    ].join("\n"),
  );
  await Deno.chmod(path, 0o755);
  return { path, dir };
}

Deno.test("cmdline read: marks and skip_hw in the filters, hardware status in offload", async () => {
  const { path, dir } = await fakeTc(OFFLOAD_SAMPLE);
  try {
    const state = await new CmdlineDriver(path).read("rep0");
    assert.equal(state.clsact, true);
    assert.deepEqual(state.foreignFilters, []);
    assert.deepEqual(
      state.filters.map((f) => [f.chain, f.prio, f.cookie, f.skipHw]),
      [
        [0, 11, OWNER_COOKIE, undefined],
        [0, 50000, undefined, undefined],
        [0, 50001, "6d6e", undefined],
        [1000000, 9, OWNER_COOKIE, true],
      ],
    );
    assert.deepEqual(
      state.offload,
      new Map([
        ["ingress 0 11 1", { inHw: true, inHwCount: 2 }],
        ["ingress 1000000 9 1", { inHw: false, inHwCount: 0 }],
        ["ingress 0 50000 1", { inHw: false, inHwCount: 0 }],
      ]),
    );
    assert.deepEqual(state.counters?.get("ingress 1000000 9 1"), { packets: 4, bytes: 336 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
