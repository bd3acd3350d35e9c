/**
 * What a switchdev NIC offloads of our TC programs, kept as data: one
 * profile per NIC and kernel, each fact with the Linux source (file and
 * function in torvalds/linux) it was read from. The checker
 * (`checker.ts`) and the simulator's hardware mode read only this, so a
 * second NIC or kernel is a second profile, not new code. Everything here is
 * modelled from the sources, not measured on hardware.
 */
import type { EthProtocol, FlowerMatch, Hook, IpProto } from "../model.ts";
import type { CtFlag } from "../simulator/flower.ts";
import type { L4 } from "../simulator/packet.ts";

/** One fact and where it comes from. */
export interface Fact<T> {
  readonly value: T;
  /** The Linux file and function that decide it. */
  readonly source: string;
  /** What the fact depends on, or how the model simplifies it. */
  readonly note?: string;
}

/** Destination ports: for which IP protocols, and whether port ranges are offloaded. */
export interface PortSupport {
  readonly protocols: readonly IpProto[];
  /** False: only a port with a mask (an aligned block) is offloaded. */
  readonly ranges: boolean;
}

/** `ct_state` flags the NIC can match set (`+flag`) and unset (`-flag`). */
export interface CtStateSupport {
  readonly set: readonly CtFlag[];
  readonly unset: readonly CtFlag[];
}

/** What each flower key of ours needs; a key missing here fails to compile. */
export interface KeySupport {
  vlanEthType: boolean;
  cvlanEthType: boolean;
  vlanId: boolean;
  ctState: CtStateSupport;
  ipProto: boolean;
  srcIp: boolean;
  dstIp: boolean;
  dstPort: PortSupport;
  icmpType: boolean;
}

/** When act_ct hands a connection to the zone's flow table (hardware conntrack). */
export interface ConnOffloadRule {
  /** The packet's ctinfo must be ESTABLISHED or ESTABLISHED_REPLY (a reply was seen). */
  readonly established: boolean;
  /** The connection must be ASSURED. */
  readonly assured: boolean;
  /** TCP: the state must be ESTABLISHED (not closing). */
  readonly tcpEstablished: boolean;
}

/** A NIC and kernel's offload behaviour for the TC programs the agent writes. */
export interface OffloadProfile {
  readonly name: string;
  readonly description: string;
  /** The kernels the facts hold for. */
  readonly kernel: string;
  /** clsact hooks whose filter blocks the representor offloads. */
  readonly hooks: Fact<readonly Hook[]>;
  /** Filter protocols (`tc filter ... protocol P`) the NIC matches. */
  readonly protocols: Fact<readonly EthProtocol[]>;
  readonly keys: { readonly [K in keyof FlowerMatch]-?: Fact<KeySupport[K]> };
  readonly actions: {
    readonly pass: Fact<boolean>;
    readonly drop: Fact<boolean>;
    /** `goto chain N`: offloaded forward; `backward` says whether N <= own chain is too. */
    readonly goto: Fact<{ readonly backward: boolean }>;
    /** `ct zone Z [commit]`: offloaded, at most `perFilter` per filter. */
    readonly ct: Fact<{ readonly perFilter: number; readonly commit: boolean }>;
  };
  /** The highest chain index and priority the NIC's tables take. */
  readonly chains: Fact<{ readonly maxChain: number; readonly maxPrio: number }>;
  readonly conntrack: {
    /** Connections the hardware table can hold, by protocol, and when act_ct adds them. */
    readonly offload: Fact<Readonly<Partial<Record<L4, ConnOffloadRule>>>>;
    /** The flags a hardware hit gives, plus `replyFlag` in the reply direction. */
    readonly hit: Fact<{ readonly flags: readonly CtFlag[]; readonly replyFlag: CtFlag }>;
    /** TCP packets with these flags always miss (act_ct tears the flow down). */
    readonly teardown: Fact<readonly ("fin" | "rst")[]>;
    /** Zones with hardware conntrack at a time, per NIC. */
    readonly maxZones: Fact<number>;
    /**
     * Where software takes over after a hardware `ct` miss: at the start of the
     * filter's chain, or at the missed `ct` action itself.
     */
    readonly missResumes: Fact<"chain" | "action">;
  };
  /** A packet no hardware filter of a chain matches: what the e-switch does with it. */
  readonly fallOff: Fact<"forward">;
  /** Whether filters may be `skip_sw` (hardware only). */
  readonly skipSw: Fact<boolean>;
  /** What changes in later kernels, for the next profile. */
  readonly laterKernels: readonly Fact<string>[];
}

const EN_TC = "drivers/net/ethernet/mellanox/mlx5/core/en_tc.c";
const PARSE = `${EN_TC} __parse_cls_flower`;
const TC_CT = "drivers/net/ethernet/mellanox/mlx5/core/en/tc_ct.c";
const ACT = "drivers/net/ethernet/mellanox/mlx5/core/en/tc/act";
const ACT_CT = "net/sched/act_ct.c";

/** ConnectX-6 Dx in switchdev mode under mlx5, kernels 6.1 and 6.2 (Debian 12's 6.1). */
export const MLX5_PROFILE: OffloadProfile = {
  name: "mlx5-cx6dx",
  description: "NVIDIA ConnectX-6 Dx (mlx5_core) VF representors in switchdev mode",
  kernel: "6.1-6.2",
  hooks: {
    value: ["ingress"],
    source: "drivers/net/ethernet/mellanox/mlx5/core/en/rep/tc.c mlx5e_rep_setup_tc " +
      "(flow_block_cb_setup_simple(..., ingress_only = true)); net/core/flow_offload.c " +
      "flow_block_cb_setup_simple (-EOPNOTSUPP unless FLOW_BLOCK_BINDER_TYPE_CLSACT_INGRESS)",
    note: "egress-hook filters exist in software only",
  },
  protocols: {
    value: ["all", "ip", "ipv6", "arp", "802.1q", "802.1ad"],
    source: `${PARSE} (FLOW_DISSECTOR_KEY_BASIC: mlx5e_tc_set_ethertype)`,
    note: "without VLAN keys an L2+ match sets cvlan_tag = 0: untagged frames only, " +
      "as software flower's protocol check already gives",
  },
  keys: {
    vlanId: { value: true, source: `${PARSE} (FLOW_DISSECTOR_KEY_VLAN: first_vid)` },
    vlanEthType: {
      value: true,
      source: `${PARSE} (FLOW_DISSECTOR_KEY_VLAN: cvlan_tag/svlan_tag by TPID)`,
    },
    cvlanEthType: {
      value: true,
      source: `${PARSE} (FLOW_DISSECTOR_KEY_CVLAN: outer_second_cvlan_tag/svlan_tag)`,
      note: "needs the ft_field_support.outer_second_vid capability, which ConnectX-6 Dx " +
        "firmware is taken to have",
    },
    srcIp: { value: true, source: `${PARSE} (FLOW_DISSECTOR_KEY_IPV4_ADDRS/IPV6_ADDRS, masked)` },
    dstIp: { value: true, source: `${PARSE} (FLOW_DISSECTOR_KEY_IPV4_ADDRS/IPV6_ADDRS, masked)` },
    ipProto: { value: true, source: `${PARSE} (FLOW_DISSECTOR_KEY_BASIC: ip_protocol)` },
    dstPort: {
      value: { protocols: ["tcp", "udp"], ranges: false },
      source: `${PARSE} (FLOW_DISSECTOR_KEY_PORTS, masked, TCP and UDP only: "Only UDP and ` +
        `TCP transports are supported for L4 matching"; FLOW_DISSECTOR_KEY_PORTS_RANGE is not ` +
        `in the supported keys: "Unsupported key")`,
    },
    icmpType: {
      value: false,
      source: `${PARSE} (FLOW_DISSECTOR_KEY_ICMP: only when MLX5_CAP_GEN(flex_parser_protocols) ` +
        `has MLX5_FLEX_PROTO_ICMP / MLX5_FLEX_PROTO_ICMPV6)`,
      note: "firmware dependent (flex parser profile); modelled as not offloaded, so a " +
        "filter on an ICMP type is never assumed to be enforced in hardware",
    },
    ctState: {
      value: { set: ["trk", "est", "rpl"], unset: ["trk", "est", "rpl", "rel", "inv", "new"] },
      source: `${TC_CT} mlx5_tc_ct_match_add ("matching on ct_state +new/+rel/+inv isn't ` +
        `supported"; -rel and -inv are matched; -new is accepted and not matched, which is ` +
        `exact in hardware since a hardware hit never has +new)`,
    },
  },
  actions: {
    pass: { value: true, source: `${ACT}/accept.c tc_act_parse_accept` },
    drop: { value: true, source: `${ACT}/drop.c tc_act_parse_drop` },
    goto: {
      value: { backward: true },
      source: `${ACT}/goto.c validate_goto_chain ("Goto lower numbered chain isn't supported" ` +
        `unless mlx5_chains_backwards_supported); lib/fs_chains.c ` +
        `mlx5_chains_backwards_supported (chains and prios plus ignore_flow_level)`,
      note: "backward gotos need ignore_flow_level, which ct offload needs anyway; the " +
        "checker still refuses them (a loop risk, and the generator only jumps forward)",
    },
    ct: {
      value: { perFilter: 1, commit: true },
      source: `${ACT}/ct.c tc_act_can_offload_ct ("Multiple CT actions are not supported"); ` +
        `${TC_CT} mlx5_tc_ct_parse_action (zone and commit kept as ct_attr)`,
    },
  },
  chains: {
    value: { maxChain: 0xfffffffe, maxPrio: 0xffffffff },
    source: "drivers/net/ethernet/mellanox/mlx5/core/lib/fs_chains.c " +
      "mlx5_chains_get_chain_range / mlx5_chains_get_prio_range",
    note: "with the ignore_flow_level capability (needed for ct offload: en/tc_ct.c " +
      'mlx5_tc_ct_init_check_support, "post action is missing"); without it chains 0-3 ' +
      "(FDB_TC_MAX_CHAIN) and priorities 1-16 (FDB_TC_MAX_PRIO, fs_core.h); without chain and " +
      "prio support, chain 0 and one priority only",
  },
  conntrack: {
    offload: {
      value: {
        tcp: { established: true, assured: true, tcpEstablished: true },
        udp: { established: true, assured: true, tcpEstablished: false },
      },
      source: `${ACT_CT} tcf_ct_flow_table_process_conn (6.1: ctinfo ESTABLISHED or ` +
        `ESTABLISHED_REPLY and IPS_ASSURED; TCP also TCP_CONNTRACK_ESTABLISHED; other ` +
        `protocols never); net/netfilter/nf_conntrack_proto_tcp.c nf_conntrack_tcp_packet ` +
        `(ASSURED on a valid packet in ESTABLISHED after the reply); ` +
        `net/netfilter/nf_conntrack_proto_udp.c nf_conntrack_udp_packet (ASSURED on a packet ` +
        `after the reply once 2 s have passed)`,
      note: "called after every software ct action, commit or not; SCTP, ICMP, related and " +
        "invalid packets never reach the table and always miss in hardware",
    },
    hit: {
      value: { flags: ["trk", "est"], replyFlag: "rpl" },
      source: `${TC_CT} mlx5_tc_ct_entry_create_mod_hdr (MLX5_CT_STATE_ESTABLISHED_BIT | ` +
        `MLX5_CT_STATE_TRK_BIT, MLX5_CT_STATE_REPLY_BIT when !orig_dir)`,
    },
    teardown: {
      value: ["fin", "rst"],
      source: `${ACT_CT} tcf_ct_flow_table_lookup (FIN or RST: flow_offload_teardown)`,
    },
    maxZones: {
      value: 255,
      source: `include/linux/mlx5/eswitch.h ESW_ZONE_ID_BITS (8); ${TC_CT} ` +
        `mlx5_tc_ct_entry_set_registers (u8 zone_restore_id), mlx5e_tc_ct_restore_flow (0: none)`,
      note: "the zone mapping is keyed by the NIC's system image GUID, so the 255 are " +
        "shared by every port of the NIC",
    },
    missResumes: {
      value: "chain",
      source: `${TC_CT} __mlx5_tc_ct_flow_offload ("Write chain miss tag for miss in ct ` +
        `table": mlx5_chains_get_chain_mapping(attr->chain)); ${EN_TC} mlx5e_tc_update_skb ` +
        `(tc_skb_ext->chain); net/sched/cls_api.c tcf_classify (starts at ext->chain)`,
      note: "software runs the missed filter's chain again from its first filter, with the " +
        "ct state of the last hardware hit restored (zone_restore_id)",
    },
  },
  fallOff: {
    value: "forward",
    source: "drivers/net/ethernet/mellanox/mlx5/core/lib/fs_chains.c " +
      "mlx5_chains_add_miss_rule (a chain's last table misses to tc_end_ft)",
    note: "with the bridge offloaded, the bridge tables after TC forward the frame in " +
      "hardware: it passes and meets no egress hook (a bridge FDB miss would reach software; " +
      "not modelled)",
  },
  skipSw: {
    value: false,
    source: "net/sched/cls_flower.c fl_change (a skip_sw filter is not in the software " +
      "table, so a packet a ct miss hands to software would not meet it)",
  },
  laterKernels: [
    {
      value: "6.3: a ct miss resumes at the missed ct action (act_miss_cookie), not at the " +
        "chain's start",
      source: `${TC_CT} __mlx5_tc_ct_flow_offload (mlx5e_tc_action_miss_mapping_get); ` +
        "net/sched/cls_api.c tcf_classify (tcf_exts_miss_cookie_lookup)",
    },
    {
      value: "6.3: UDP is offloaded once confirmed (original direction only until ASSURED), " +
        "and hardware can give and match ct_state +new",
      source: `${ACT_CT} tcf_ct_flow_table_process_conn (bidirectional = ASSURED); ` +
        `${TC_CT} mlx5_tc_ct_match_add, mlx5_tc_ct_entry_create_mod_hdr (MLX5_CT_STATE_NEW_BIT)`,
    },
    {
      value: "6.4: several ct actions per filter",
      source: `${ACT}/ct.c tc_act_can_offload_ct (removed by "net/mlx5e: TC, Remove ` +
        `multiple ct actions limitation")`,
    },
  ],
};
