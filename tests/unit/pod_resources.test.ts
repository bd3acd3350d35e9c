/** Decoding the kubelet's PodResources answer, and what the agent does while the kubelet is away. */
import assert from "node:assert/strict";
import { decodeAllocations, KubeletDevices } from "../../src/sriov/pod_resources.ts";
import type { DeviceAllocations } from "../../src/interfaces/local.ts";

/** Protobuf length-delimited field `number` holding `body`. */
function field(number: number, body: Uint8Array | string): Uint8Array {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const out: number[] = [number * 8 + 2];
  let length = bytes.length;
  do {
    out.push((length & 0x7f) | (length > 0x7f ? 0x80 : 0));
    length >>= 7;
  } while (length > 0);
  return new Uint8Array([...out, ...bytes]);
}
const join = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

Deno.test("pod resources: PCI devices per pod and resource; other devices and fields skipped", () => {
  const devices = (resource: string, ...ids: string[]) =>
    field(2, join(field(1, resource), ...ids.map((id) => field(2, id))));
  const container = (...devs: Uint8Array[]) => field(3, join(field(1, "c"), ...devs));
  const answer = join(
    field(
      1,
      join(
        field(1, "web"),
        field(2, "app"),
        container(devices("example.com/vf", "0000:3B:02.1", "0000:3b:02.2")),
        container(devices("nvidia.com/gpu", "GPU-1234"), devices("example.com/vf", "0000:3b:02.3")),
        new Uint8Array([4 * 8 + 0, 7]), // cpu_ids: a varint field the agent does not read
      ),
    ),
    field(1, join(field(1, "idle"), field(2, "app"))),
  );
  assert.deepEqual(
    decodeAllocations(answer),
    new Map([[
      "app/web",
      new Map([["example.com/vf", ["0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"]]]),
    ]]),
  );
  assert.throws(() => decodeAllocations(new Uint8Array([0x0a, 0x7f, 0x01])), /runs past the end/);
});

Deno.test("pod resources: the last answer holds while the kubelet is away; none before the first", async () => {
  const answers: (DeviceAllocations | Error)[] = [
    new Error("connect ENOENT"),
    new Map([["app/web", new Map([["r", ["0000:3b:02.1"]]])]]),
    new Error("connect ENOENT"),
  ];
  const devices = new KubeletDevices({
    list: () => {
      const next = answers.shift()!;
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
  });
  await assert.rejects(() => devices.current(), /ENOENT/);
  const first = await devices.current();
  assert.equal(first.get("app/web")?.get("r")?.[0], "0000:3b:02.1");
  assert.equal(await devices.current(), first, "the kubelet is away: its last answer");
});

Deno.test("pod resources: a changed answer is reported, by whichever caller fetched it", async () => {
  const web = (pci: string): DeviceAllocations => new Map([["app/web", new Map([["r", [pci]]])]]);
  const answers = [web("0000:3b:02.1"), web("0000:3b:02.1"), web("0000:3b:02.2")];
  const devices = new KubeletDevices({ list: () => Promise.resolve(answers.shift()!) });
  let changes = 0;
  devices.watch(() => changes++, 3_600_000);
  try {
    await devices.current();
    assert.equal(changes, 0, "the first answer is no change");
    await devices.current();
    assert.equal(changes, 0, "the same answer again");
    await devices.current();
    assert.equal(changes, 1, "a VF moved");
  } finally {
    devices.stop();
  }
});
