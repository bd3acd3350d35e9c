/**
 * The netlink codec against bytes captured from the kernel and from `tc`
 * itself (tests/fixtures/netlink/captured.json, written by capture.sh in
 * the kernel VM: each case is one `tc` run under strace, with every
 * buffer it sent and received). For each command: the TC object the
 * serializer writes as that exact command line encodes to the bytes `tc`
 * sent; the kernel's dump answers decode to the objects that were added;
 * its error answers decode to their errno and extended-ACK text.
 */
import assert from "node:assert/strict";
import {
  chainDumpRequest,
  chainRequest,
  commandRequest,
  ctStateBits,
  filterDumpRequest,
  qdiscDumpRequest,
  writeCommand,
} from "../../src/drivers/netlink/tc_encode.ts";
import {
  ctStateText,
  decodeChain,
  decodeFilter,
  decodeQdisc,
  hookOfParent,
} from "../../src/drivers/netlink/tc_decode.ts";
import {
  decodeAck,
  decodeAttrs,
  decodeMessages,
  encodeMessage,
  NetlinkFormatError,
  type NetlinkMessage,
  type NetlinkRequest,
  NetlinkWriter,
  NL,
} from "../../src/drivers/netlink/wire.ts";
import { commandSteps } from "../../src/drivers/netlink/driver.ts";
import { ACT, CLS_FLAGS, FLOWER, RTM, TCA } from "../../src/drivers/netlink/tc_constants.ts";
import {
  type FlowerMatch,
  type Hook,
  OWNER_COOKIE,
  type TcAction,
  type TcCommand,
  type TcFilter,
} from "../../src/tc/model.ts";
import { chainDeleteCommand, clsactCommand, filterCommand } from "../../src/tc/serialize.ts";
import { sameFilters } from "../../src/tc/compare.ts";

interface Capture {
  name: string;
  command: string;
  exitCode: number;
  buffers: { dir: "send" | "recv"; hex: string }[];
}

const fixture: { kernel: string; tc: string; cases: Capture[] } = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/netlink/captured.json", import.meta.url)),
);
const IFINDEX = 3; // cap0 in the capture VM

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function bytes(text: string): Uint8Array {
  return new Uint8Array(text.match(/../g)!.map((h) => parseInt(h, 16)));
}

function capture(name: string): Capture {
  const found = fixture.cases.find((c) => c.name === name);
  assert.ok(found, `no captured case ${name}`);
  return found;
}

function sent(c: Capture): Uint8Array {
  const buffers = c.buffers.filter((b) => b.dir === "send");
  assert.equal(buffers.length, 1, `${c.name}: one request`);
  return bytes(buffers[0].hex);
}

function received(c: Capture) {
  return c.buffers.filter((b) => b.dir === "recv").flatMap((b) => decodeMessages(bytes(b.hex)));
}

/** Frames `request` with the captured request's sequence number and ACK flag. */
function asTcSent(request: NetlinkRequest, captured: Uint8Array): string {
  const view = new DataView(captured.buffer);
  const ack = view.getUint16(6, true) & NL.F_ACK;
  return hex(encodeMessage({ ...request, flags: request.flags | ack }, view.getUint32(8, true)));
}

/** Reads a filter command in the serializer's format back into a TcFilter. */
function parseFilterCommand(command: string): { verb: string; filter: TcFilter } {
  const t = command.split(" ");
  assert.deepEqual([t[0], t[1], t[3], t[6], t[8], t[10], t[12], t[14]], [
    "tc",
    "filter",
    "dev",
    "protocol",
    "prio",
    "handle",
    "chain",
    "flower",
  ]);
  const match: FlowerMatch = {};
  const actions: TcAction[] = [];
  for (let i = 15; i < t.length;) {
    const key = t[i++];
    if (key === "action") {
      const kind = t[i++];
      if (kind === "pass" || kind === "drop") actions.push({ kind });
      else if (kind === "goto") {
        assert.equal(t[i++], "chain");
        actions.push({ kind: "goto", chain: Number(t[i++]) });
      } else {
        assert.equal(kind, "ct");
        const commit = t[i] === "commit";
        if (commit) i++;
        assert.equal(t[i++], "zone");
        actions.push({ kind: "ct", zone: Number(t[i++]), commit });
        assert.equal(t[i++], "pipe");
      }
      continue;
    }
    const value = t[i++];
    if (key === "vlan_ethtype") match.vlanEthType = value as FlowerMatch["vlanEthType"];
    else if (key === "cvlan_ethtype") match.cvlanEthType = value as FlowerMatch["cvlanEthType"];
    else if (key === "ip_proto") match.ipProto = value as FlowerMatch["ipProto"];
    else if (key === "type") match.icmpType = Number(value);
    else if (key === "src_ip") match.srcIp = value;
    else if (key === "dst_ip") match.dstIp = value;
    else if (key === "ct_state") match.ctState = value;
    else if (key === "vlan_id") match.vlanId = Number(value);
    else if (key === "dst_port" && value.includes("/")) {
      const [port, mask] = value.split("/").map(Number);
      match.dstPort = { first: port, last: port + (~mask & 0xffff) };
    } else if (key === "dst_port") {
      const [first, last] = value.split("-").map(Number);
      match.dstPort = { first, last: last ?? first };
    } else throw new Error(`unexpected key ${key}`);
  }
  return {
    verb: t[2],
    filter: {
      hook: t[5] as Hook,
      protocol: t[7] as TcFilter["protocol"],
      prio: Number(t[9]),
      handle: Number(t[11]),
      chain: Number(t[13]),
      match,
      actions,
    },
  };
}

const filterCases = fixture.cases.filter((c) => /^(add|replace)-/.test(c.name));

Deno.test("the fixture was captured from a real kernel and tc run", () => {
  assert.match(fixture.kernel, /^\d+\.\d+/);
  assert.match(fixture.tc, /iproute2/);
  assert.ok(filterCases.length >= 20);
  for (const c of fixture.cases) {
    assert.equal(c.exitCode, c.name.startsWith("err-") ? 2 : 0, c.name);
  }
});

Deno.test("each filter encodes to the bytes tc sent for the serializer's command line", () => {
  for (const c of filterCases) {
    const { verb, filter } = parseFilterCommand(c.command);
    // The serializer writes exactly the command that was captured...
    assert.equal(`tc ${filterCommand(verb as "add" | "replace", "cap0", filter)}`, c.command);
    // ...and the netlink encoder sends exactly what tc sent for it.
    const captured = sent(c);
    assert.equal(
      asTcSent(
        commandRequest(IFINDEX, { op: `filter-${verb as "add" | "replace"}`, filter }),
        captured,
      ),
      hex(captured),
      c.name,
    );
  }
});

Deno.test("filter, chain and qdisc requests match tc byte for byte", () => {
  const del = capture("del-filter");
  const { filter } = parseFilterCommand(del.command.replace(" del ", " add "));
  const expectations: [string, NetlinkRequest, string][] = [
    [
      "del-filter",
      commandRequest(IFINDEX, { op: "filter-del", filter }),
      "tc filter del dev cap0 ingress protocol ip prio 1 handle 1 chain 1100000 flower",
    ],
    [
      "qdisc-add",
      commandRequest(IFINDEX, { op: "qdisc-add" }),
      `tc ${clsactCommand("add", "cap0")}`,
    ],
    [
      "qdisc-del",
      commandRequest(IFINDEX, { op: "qdisc-del" }),
      `tc ${clsactCommand("del", "cap0")}`,
    ],
    [
      "chain-add",
      chainRequest("add", IFINDEX, "ingress", 7),
      "tc chain add dev cap0 ingress chain 7",
    ],
    [
      "chain-del",
      chainRequest("del", IFINDEX, "ingress", 7),
      "tc chain del dev cap0 ingress chain 7",
    ],
    [
      "del-chain",
      chainRequest("del", IFINDEX, "ingress", 1100001),
      `tc ${chainDeleteCommand("cap0", "ingress", 1100001)}`,
    ],
    ["qdisc-show", qdiscDumpRequest(IFINDEX), "tc qdisc show dev cap0"],
    ["chain-show", chainDumpRequest(IFINDEX, "ingress"), "tc chain show dev cap0 ingress"],
    ["show-ingress", filterDumpRequest(IFINDEX, "ingress"), "tc filter show dev cap0 ingress"],
    ["show-egress", filterDumpRequest(IFINDEX, "egress"), "tc filter show dev cap0 egress"],
    [
      "show-chain",
      filterDumpRequest(IFINDEX, "ingress", 1100001),
      "tc filter show dev cap0 ingress chain 1100001",
    ],
  ];
  for (const [name, request, command] of expectations) {
    const c = capture(name);
    assert.equal(c.command, command, name);
    const captured = sent(c);
    assert.equal(asTcSent(request, captured), hex(captured), name);
  }
});

/** The filters the capture left on a hook: every add, with the replace applied. */
function programmed(hook: Hook, chain?: number): TcFilter[] {
  const byIdentity = new Map<string, TcFilter>();
  for (const c of filterCases) {
    const { filter } = parseFilterCommand(c.command);
    if (filter.hook !== hook || (chain !== undefined && filter.chain !== chain)) continue;
    byIdentity.set(`${filter.chain}/${filter.prio}/${filter.handle}/${filter.protocol}`, filter);
  }
  return [...byIdentity.values()];
}

function decodedFilters(name: string): { filters: TcFilter[]; foreign: string[]; headers: number } {
  const out = { filters: [] as TcFilter[], foreign: [] as string[], headers: 0 };
  for (const message of received(capture(name))) {
    if (message.type === NL.NLMSG_DONE) continue;
    const decoded = decodeFilter(message);
    if (!decoded) out.headers++;
    else if ("filter" in decoded) out.filters.push(decoded.filter);
    else out.foreign.push(decoded.foreign);
  }
  return out;
}

Deno.test("kernel filter dumps decode to the filters that were added", () => {
  for (
    const [name, hook, chain] of [
      ["show-ingress", "ingress", undefined],
      ["show-egress", "egress", undefined],
      ["show-chain", "ingress", 1100001],
    ] as const
  ) {
    const { filters, foreign, headers } = decodedFilters(name);
    const expected = programmed(hook, chain);
    assert.deepEqual(foreign, [], name);
    assert.ok(headers > 0, `${name}: per-prio header messages are skipped`);
    assert.equal(filters.length, expected.length, name);
    assert.ok(sameFilters(filters, expected), `${name}: ${JSON.stringify(filters, null, 1)}`);
  }
  // The kernel sends every action's counters; each filter's first one is kept. While the
  // capture ran, one 56-byte frame reached the device and met only the catch-all at prio 100.
  const counted: string[] = [];
  for (const message of received(capture("show-ingress"))) {
    if (message.type === NL.NLMSG_DONE) continue;
    const decoded = decodeFilter(message);
    if (!decoded || !("filter" in decoded)) continue;
    assert.ok(decoded.counter, `chain ${decoded.filter.chain} prio ${decoded.filter.prio}`);
    if (decoded.counter.packets > 0) {
      counted.push(
        `${decoded.filter.chain}/${decoded.filter.prio}: ${decoded.counter.packets} ` +
          `packet, ${decoded.counter.bytes} bytes`,
      );
    }
  }
  assert.deepEqual(counted, ["0/100: 1 packet, 56 bytes"]);
  // On the veth the kernel holds every filter in software only: fl_change adds NOT_IN_HW to
  // TCA_FLOWER_FLAGS and fl_dump sends TCA_FLOWER_IN_HW_COUNT 0. Neither becomes skip_hw.
  for (const message of received(capture("show-ingress"))) {
    if (message.type === NL.NLMSG_DONE) continue;
    const decoded = decodeFilter(message);
    if (!decoded || !("filter" in decoded)) continue;
    assert.deepEqual(decoded.offload, { inHw: false, inHwCount: 0 });
    assert.equal("skipHw" in decoded.filter, false);
    assert.equal("cookie" in decoded.filter, false);
  }
  // The replaced dispatch filter reads back with its new target.
  const dispatch = decodedFilters("show-ingress").filters.find((f) =>
    f.chain === 0 && f.prio === 2
  );
  assert.deepEqual(dispatch?.actions, [
    { kind: "ct", zone: 42, commit: false },
    { kind: "goto", chain: 2100000 },
  ]);
  // Every dump ends with NLMSG_DONE carrying no error.
  const done = received(capture("show-ingress")).at(-1)!;
  assert.equal(done.type, NL.NLMSG_DONE);
  assert.equal(decodeAck(done).error, 0);
});

Deno.test("qdisc and chain dumps decode", () => {
  const qdiscs = received(capture("qdisc-show"))
    .filter((m) => m.type !== NL.NLMSG_DONE)
    .map(decodeQdisc);
  assert.deepEqual(qdiscs.filter((q) => q.ifindex === IFINDEX).map((q) => q.kind), [
    "noqueue",
    "clsact",
  ]);
  // The kernel answered with other devices' qdiscs too: the driver filters by index.
  assert.ok(qdiscs.some((q) => q.ifindex !== IFINDEX));
  const chains = received(capture("chain-show"))
    .filter((m) => m.type !== NL.NLMSG_DONE)
    .map(decodeChain);
  assert.deepEqual(chains, [{ ifindex: IFINDEX, chain: 7 }]);
});

Deno.test("kernel errors decode to errno and extended-ACK text", () => {
  for (
    const [name, errno, text] of [
      ["err-exists", -17, "Filter already exists"],
      ["err-ct-state", -22, "new and est are mutually exclusive"],
      ["err-no-qdisc", -22, "Parent Qdisc doesn't exists"],
    ] as const
  ) {
    const [message] = received(capture(name));
    assert.equal(message.type, NL.NLMSG_ERROR, name);
    assert.deepEqual(decodeAck(message), { error: errno, message: text }, name);
    assert.match(capture(name).command, /filter add/);
  }
  // A plain ACK is error 0 without text.
  const [ack] = received(capture("add-arp"));
  assert.deepEqual(decodeAck(ack), { error: 0, message: undefined });
});

Deno.test("a capped error (NETLINK_CAP_ACK) skips the echoed header only", () => {
  const tlvs = new NetlinkWriter().string(NL.ERR_ATTR_MSG, "Unknown device").finish();
  const payload = new Uint8Array(4 + NL.headerSize + tlvs.length);
  const view = new DataView(payload.buffer);
  view.setInt32(0, -19, true);
  view.setUint32(4, 999, true); // the original length, larger than what is echoed
  payload.set(tlvs, 4 + NL.headerSize);
  const message = decodeMessages(
    encodeMessage({ type: NL.NLMSG_ERROR, flags: NL.F_CAPPED | NL.F_ACK_TLVS, body: payload }, 5),
  )[0];
  assert.deepEqual(decodeAck(message), { error: -19, message: "Unknown device" });
});

Deno.test("attribute writer aligns, nests and patches lengths", () => {
  const written = new NetlinkWriter().u8(1, 7).begin(2).u16(3, 0x1234).string(4, "ab").end().be16(
    5,
    0x0800,
  )
    .finish();
  assert.equal(
    hex(written),
    "0500010007000000" + "14000200" + "060003003412" + "0000" + "070004006162" + "00" + "00" +
      "060005000800" + "0000",
  );
  const top = decodeAttrs(written);
  assert.deepEqual(top.map((a) => a.type), [1, 2, 5]);
  assert.deepEqual(decodeAttrs(top[1].value).map((a) => a.type), [3, 4]);
  assert.throws(() => new NetlinkWriter().begin(1).finish(), /unclosed/);
});

Deno.test("attribute writer keeps every value across buffer growth", () => {
  const writer = new NetlinkWriter();
  for (let i = 0; i < 3000; i++) {
    writer.u8(1, i & 0xff).be16(2, i).u32(3, i).be32(4, i).struct(
      5,
      4,
      (v, at) => v.setUint32(at, i),
    );
  }
  const attrs = decodeAttrs(writer.finish());
  assert.equal(attrs.length, 15_000);
  for (let i = 0; i < 3000; i++) {
    const [a, b, c, d, e] = attrs.slice(i * 5, i * 5 + 5).map((x) => hex(x.value));
    assert.deepEqual([a, b, c, d, e], [
      (i & 0xff).toString(16).padStart(2, "0"),
      i.toString(16).padStart(4, "0"),
      hex(new Uint8Array(new Uint32Array([i]).buffer)),
      i.toString(16).padStart(8, "0"),
      i.toString(16).padStart(8, "0"),
    ]);
  }
});

Deno.test("a step written into one writer frames each command as it would be sent alone", () => {
  const commands: TcCommand[] = [
    { op: "qdisc-add" },
    ...filterCases.map((c) => ({
      op: "filter-add" as const,
      filter: parseFilterCommand(c.command).filter,
    })),
    { op: "chain-del", hook: "egress", chain: 1_200_000 },
  ];
  const writer = new NetlinkWriter();
  commands.forEach((command, i) => writeCommand(writer, IFINDEX, command, 100 + i));
  writer.addFlags(writer.messageStarts.at(-1)!, NL.F_ACK);
  const bytes = writer.finish();
  const messages = decodeMessages(bytes);
  assert.equal(messages.length, commands.length);
  assert.equal(writer.messageStarts.length, commands.length);
  commands.forEach((command, i) => {
    const alone = commandRequest(IFINDEX, command);
    const last = i === commands.length - 1;
    assert.equal(messages[i].seq, 100 + i);
    assert.equal(messages[i].flags, alone.flags | (last ? NL.F_ACK : 0));
    assert.equal(messages[i].type, alone.type);
    assert.equal(hex(messages[i].payload), hex(alone.body));
  });
  assert.throws(() => {
    const writer = new NetlinkWriter();
    writer.startMessage(1, 0, 0, 0);
    writer.finish();
  }, /unclosed/);
});

Deno.test("truncated messages and attributes are format errors, not crashes", () => {
  const frame = encodeMessage({ type: 44, flags: 0, body: new Uint8Array(24) }, 1);
  assert.throws(() => decodeMessages(frame.subarray(0, frame.length - 4)), NetlinkFormatError);
  assert.throws(() => decodeAttrs(new Uint8Array([8, 0, 1, 0, 0])), NetlinkFormatError);
  assert.deepEqual(decodeMessages(new Uint8Array(3)), []);
});

Deno.test("ct_state flag strings round-trip through their bits", () => {
  assert.deepEqual(ctStateBits("+trk+est+rpl"), { value: 0x2a, mask: 0x2a });
  assert.deepEqual(ctStateBits("+trk-est"), { value: 0x08, mask: 0x0a });
  for (const text of ["+trk", "+trk+est+rpl", "+trk+rel", "+trk+inv", "+trk-est-new"]) {
    const { value, mask } = ctStateBits(text);
    assert.equal(ctStateText(value, mask), text);
  }
  assert.throws(() => ctStateBits("+trk;reboot"), /invalid ct_state/);
  assert.throws(() => ctStateBits(""), /empty/);
});

Deno.test("encoder refuses values tc would refuse", () => {
  const base: TcFilter = {
    hook: "ingress",
    chain: 0,
    prio: 1,
    handle: 1,
    protocol: "ip",
    match: {},
    actions: [{ kind: "pass" }],
  };
  const addRequest = (filter: TcFilter) => commandRequest(1, { op: "filter-add", filter });
  const bad: [Partial<TcFilter>, RegExp][] = [
    [{ prio: 0 }, /prio/],
    [{ prio: 70000 }, /prio/],
    [{ match: { dstIp: "10.0.0.0/33" } }, /invalid prefix/],
    [{ match: { dstIp: "10.0.0.256/24" } }, /invalid prefix/],
    [{ match: { dstIp: "10.0.0/8" } }, /invalid prefix/],
    [{ match: { dstIp: "010.0.0.0/8" } }, /invalid prefix/],
    [{ match: { dstIp: "10.0.0.0/033" } }, /invalid prefix/],
    [{ match: { dstIp: "10.0.0.0" } }, /invalid prefix/],
    [{ match: { dstIp: "10.0.0.0/8 action pass" } }, /invalid prefix/],
    [{ match: { dstIp: "fd00::/64" } }, /does not match ethertype/],
    [{ match: { ipProto: "tcp", dstPort: { first: 90, last: 80 } } }, /port/],
    [{ match: { dstPort: { first: 80, last: 80 } } }, /without ip_proto/],
    [{ actions: [{ kind: "goto", chain: 2 ** 28 }] }, /goto chain/],
    [{ actions: [{ kind: "ct", zone: 70000, commit: false }] }, /zone/],
  ];
  for (const [change, error] of bad) {
    assert.throws(() => addRequest({ ...base, ...change }), error);
  }
  // Host bits are cleared, as for every other prefix the agent handles.
  const withHostBits = addRequest({ ...base, match: { dstIp: "10.1.2.3/16" } });
  const canonical = addRequest({ ...base, match: { dstIp: "10.1.0.0/16" } });
  assert.equal(hex(withHostBits.body), hex(canonical.body));
});

Deno.test("steps keep the dispatch apart from the chains it sends traffic to", () => {
  const filter = (chain: number): TcFilter => ({
    hook: "ingress",
    chain,
    prio: 1,
    handle: 1,
    protocol: "all",
    match: {},
    actions: [{ kind: "drop" }],
  });
  const commands: TcCommand[] = [
    { op: "qdisc-add" },
    { op: "filter-add", filter: filter(1_100_000) },
    { op: "filter-add", filter: filter(1_100_001) },
    { op: "filter-add", filter: filter(0) },
    { op: "filter-replace", filter: filter(0) },
    { op: "filter-del", filter: filter(0) },
    { op: "chain-del", hook: "ingress", chain: 2_100_000 },
    { op: "chain-del", hook: "egress", chain: 2_100_000 },
  ];
  assert.deepEqual(commandSteps(commands).map((step) => step.length), [1, 2, 1, 1, 1, 2]);
});

const MARKED: TcFilter = {
  hook: "ingress",
  chain: 0,
  prio: 11,
  handle: 1,
  protocol: "ip",
  match: { ctState: "-trk" },
  actions: [{ kind: "ct", zone: 7, commit: false }, { kind: "goto", chain: 1000000 }],
  cookie: OWNER_COOKIE,
};

/** The attributes of the flower options of a filter request. */
function flowerOptions(request: NetlinkRequest) {
  const options = decodeAttrs(request.body.subarray(20)).find((a) => a.type === TCA.OPTIONS)!;
  return decodeAttrs(options.value);
}

/** Decodes a request as if the kernel had dumped it. */
function decodeRequest(request: NetlinkRequest) {
  return decodeFilter(decodeMessages(encodeMessage(request, 1))[0]);
}

Deno.test("netlink: the cookie rides in the first action's nest, skip_hw in TCA_FLOWER_FLAGS", () => {
  const request = commandRequest(IFINDEX, {
    op: "filter-add",
    filter: { ...MARKED, skipHw: true },
  });
  const flower = flowerOptions(request);
  const flags = flower.find((a) => a.type === FLOWER.FLAGS)!;
  assert.equal(hex(flags.value), "01000000"); // TCA_CLS_FLAGS_SKIP_HW, host order
  const [first, second] = decodeAttrs(flower.find((a) => a.type === FLOWER.ACT)!.value)
    .map((nest) => decodeAttrs(nest.value));
  // tc's parse_action order: kind, options, then the cookie (binary, hex-decoded).
  assert.deepEqual(first.map((a) => a.type), [ACT.KIND, ACT.OPTIONS, ACT.COOKIE]);
  assert.equal(hex(first[2].value), "6d6e702d746301");
  assert.deepEqual(second.map((a) => a.type), [ACT.KIND, ACT.OPTIONS]);
  // Without a cookie or skip_hw the bytes are those of the captured tc commands (checked above):
  // no cookie attribute and flags 0.
  const plain = flowerOptions(
    commandRequest(IFINDEX, { op: "filter-add", filter: { ...MARKED, cookie: undefined } }),
  );
  assert.equal(hex(plain.find((a) => a.type === FLOWER.FLAGS)!.value), "00000000");
  const plainFirst = decodeAttrs(
    decodeAttrs(plain.find((a) => a.type === FLOWER.ACT)!.value)[0].value,
  );
  assert.deepEqual(plainFirst.map((a) => a.type), [ACT.KIND, ACT.OPTIONS]);
  // A delete names the filter only: no actions, flags 0.
  const del = flowerOptions(commandRequest(IFINDEX, { op: "filter-del", filter: MARKED }));
  assert.equal(del.some((a) => a.type === FLOWER.ACT), false);
  assert.equal(hex(del.find((a) => a.type === FLOWER.FLAGS)!.value), "00000000");
});

Deno.test("netlink: cookie and skip_hw round-trip through encode and decode", () => {
  for (
    const filter of [
      MARKED,
      { ...MARKED, skipHw: true },
      { ...MARKED, cookie: "ab".repeat(16), actions: [{ kind: "drop" } as TcAction] },
      { ...MARKED, cookie: undefined },
    ]
  ) {
    for (const op of ["filter-add", "filter-replace"] as const) {
      const decoded = decodeRequest(commandRequest(IFINDEX, { op, filter }));
      assert.ok(decoded && "filter" in decoded);
      const expected = { ...filter };
      if (expected.cookie === undefined) delete expected.cookie;
      assert.deepEqual(decoded.filter, expected);
      assert.ok(sameFilters([decoded.filter], [filter]));
      // What was asked for says nothing about where the kernel put it.
      assert.equal(decoded.offload, undefined);
    }
  }
});

/**
 * A filter as fl_dump sends it: the keys tc wrote, then TCA_FLOWER_FLAGS
 * (only when non-zero), TCA_FLOWER_IN_HW_COUNT, then the actions.
 */
function dumped(filter: TcFilter, flags: number, inHwCount?: number): NetlinkMessage {
  const request = commandRequest(IFINDEX, { op: "filter-add", filter });
  const header = new DataView(request.body.buffer, request.body.byteOffset, 20);
  const w = new NetlinkWriter();
  const at = w.startMessage(RTM.NEWTFILTER, NL.F_MULTI, 1, 20);
  for (const offset of [4, 8, 12, 16]) w.setU32(at + offset, header.getUint32(offset, true));
  for (const a of decodeAttrs(request.body.subarray(20))) {
    if (a.type !== TCA.OPTIONS) {
      w.bytes(a.type, a.value);
      continue;
    }
    w.begin(TCA.OPTIONS);
    const inner = decodeAttrs(a.value);
    for (const key of inner) {
      if (key.type !== FLOWER.FLAGS && key.type !== FLOWER.ACT) w.bytes(key.type, key.value);
    }
    if (flags !== 0) w.u32(FLOWER.FLAGS, flags);
    if (inHwCount !== undefined) w.u32(FLOWER.IN_HW_COUNT, inHwCount);
    const actions = inner.find((key) => key.type === FLOWER.ACT);
    if (actions) w.bytes(FLOWER.ACT, actions.value);
    w.end();
  }
  w.endMessage();
  return decodeMessages(w.finish())[0];
}

Deno.test("netlink: in_hw, not_in_hw and in_hw_count decode to offload, never to skip_hw", () => {
  const cases: [number, number | undefined, TcFilter, object | undefined][] = [
    [CLS_FLAGS.IN_HW, 2, MARKED, { inHw: true, inHwCount: 2 }],
    [CLS_FLAGS.NOT_IN_HW, 0, MARKED, { inHw: false, inHwCount: 0 }],
    [
      CLS_FLAGS.SKIP_HW | CLS_FLAGS.NOT_IN_HW,
      0,
      { ...MARKED, skipHw: true },
      { inHw: false, inHwCount: 0 },
    ],
    [0, 0, MARKED, undefined], // a kernel that says nothing about hardware
  ];
  for (const [flags, count, expected, offload] of cases) {
    const decoded = decodeFilter(dumped(MARKED, flags, count));
    assert.ok(decoded && "filter" in decoded);
    assert.deepEqual(decoded.filter, expected, `flags ${flags}`);
    assert.deepEqual(decoded.offload, offload, `flags ${flags}`);
  }
});

Deno.test("netlink: the encoder refuses a malformed cookie", () => {
  for (const cookie of ["", "abc", "6D6E", "zz", "ab".repeat(17), "6d6e pass"]) {
    assert.throws(
      () => commandRequest(IFINDEX, { op: "filter-add", filter: { ...MARKED, cookie } }),
      /invalid tc cookie/,
      JSON.stringify(cookie),
    );
  }
  assert.throws(
    () => commandRequest(IFINDEX, { op: "filter-add", filter: { ...MARKED, actions: [] } }),
    /needs an action/,
  );
});

Deno.test("encode: the Go agent's ingress qdisc is deleted by its own kind", () => {
  for (const kind of ["ingress", "clsact"] as const) {
    const [message] = decodeMessages(encodeMessage(
      commandRequest(IFINDEX, { op: "qdisc-del", kind }),
      1,
    ));
    assert.equal(message.type, RTM.DELQDISC);
    assert.deepEqual(decodeQdisc(message), { ifindex: IFINDEX, kind });
  }
});

Deno.test("decode: a filter on the Go agent's ingress qdisc (parent ffff:) is on the ingress hook", () => {
  assert.equal(hookOfParent(0xffff0000), "ingress");
  assert.equal(hookOfParent(0xfffffff2), "ingress");
  assert.equal(hookOfParent(0xfffffff3), "egress");
  assert.equal(hookOfParent(0x00010000), undefined);
});
