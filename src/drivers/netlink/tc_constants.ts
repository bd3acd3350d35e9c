/**
 * rtnetlink TC numbers this project uses (linux/rtnetlink.h, pkt_sched.h,
 * pkt_cls.h, tc_act/tc_gact.h, tc_act/tc_ct.h), checked against the
 * kernel's own headers and the captured messages in tests/fixtures/netlink.
 */

/** rtnetlink message types. */
export const RTM = {
  NEWQDISC: 36,
  DELQDISC: 37,
  GETQDISC: 38,
  NEWTFILTER: 44,
  DELTFILTER: 45,
  GETTFILTER: 46,
  NEWCHAIN: 100,
  DELCHAIN: 101,
  GETCHAIN: 102,
} as const;

/** Top-level TC attributes. */
export const TCA = { KIND: 1, OPTIONS: 2, CHAIN: 11, INGRESS_BLOCK: 13 } as const;

/** `tcm_ifindex` of a request for a shared block (`tcm_parent` then holds the block index). */
export const TCM_IFINDEX_MAGIC_BLOCK = 0xffffffff;

/** Handles and parents of the clsact qdisc and its two hooks. */
export const CLSACT = {
  handle: 0xffff0000,
  parent: 0xfffffff1,
  ingress: 0xfffffff2,
  egress: 0xfffffff3,
} as const;

/** Flower attributes. */
export const FLOWER = {
  ACT: 3,
  KEY_ETH_TYPE: 8,
  KEY_IP_PROTO: 9,
  KEY_IPV4_SRC: 10,
  KEY_IPV4_SRC_MASK: 11,
  KEY_IPV4_DST: 12,
  KEY_IPV4_DST_MASK: 13,
  KEY_IPV6_SRC: 14,
  KEY_IPV6_SRC_MASK: 15,
  KEY_IPV6_DST: 16,
  KEY_IPV6_DST_MASK: 17,
  KEY_TCP_DST: 19,
  KEY_UDP_DST: 21,
  FLAGS: 22,
  KEY_VLAN_ID: 23,
  KEY_VLAN_ETH_TYPE: 25,
  KEY_TCP_DST_MASK: 36,
  KEY_UDP_DST_MASK: 38,
  KEY_SCTP_DST_MASK: 40,
  KEY_SCTP_DST: 42,
  KEY_ICMPV6_TYPE: 55,
  KEY_ICMPV6_TYPE_MASK: 56,
  KEY_CVLAN_ETH_TYPE: 79,
  IN_HW_COUNT: 86,
  KEY_PORT_DST_MIN: 89,
  KEY_PORT_DST_MAX: 90,
  KEY_CT_STATE: 91,
  KEY_CT_STATE_MASK: 92,
} as const;

/** Classifier flags in `TCA_FLOWER_FLAGS` (linux/pkt_cls.h `TCA_CLS_FLAGS_*`). */
export const CLS_FLAGS = { SKIP_HW: 1, SKIP_SW: 2, IN_HW: 4, NOT_IN_HW: 8 } as const;

/** ct_state flag bits, in the order the model writes them (`+trk+est+new+rel+inv+rpl`). */
export const CT_STATE_FLAGS: readonly (readonly [string, number])[] = [
  ["trk", 0x08],
  ["est", 0x02],
  ["new", 0x01],
  ["rel", 0x04],
  ["inv", 0x10],
  ["rpl", 0x20],
];

/** Generic action attributes. */
export const ACT = {
  KIND: 1,
  OPTIONS: 2,
  INDEX: 3,
  STATS: 4,
  PAD: 5,
  COOKIE: 6,
  FLAGS: 7,
  HW_STATS: 8,
  USED_HW_STATS: 9,
  IN_HW_COUNT: 10,
} as const;

/** Generic statistics attributes in an action's `TCA_ACT_STATS` (linux/gen_stats.h). */
export const STATS = { BASIC: 1 } as const;

/** gact and ct option attributes. */
export const GACT = { TM: 1, PARMS: 2, PROB: 3, PAD: 4 } as const;
/** ct action option attributes and flags. */
export const CT = { PARMS: 1, TM: 2, ACTION: 3, ZONE: 4, PAD: 5, ACT_COMMIT: 1 } as const;

/** Control verdicts (linux/pkt_cls.h). */
export const TC_ACT = {
  OK: 0,
  SHOT: 2,
  PIPE: 3,
  GOTO_CHAIN: 0x20000000,
  OPCODE_MASK: 0xf0000000,
  VALUE_MASK: 0x0fffffff,
} as const;

/** Ethertypes by the names the model uses. */
export const ETH_P: Record<string, number> = {
  all: 0x0003,
  ip: 0x0800,
  ipv6: 0x86dd,
  arp: 0x0806,
  "802.1q": 0x8100,
  "802.1ad": 0x88a8,
};

/** IP protocol numbers by the names the model uses. */
export const IPPROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmpv6: 58 };

/** Size of struct tcmsg. */
export const TCMSG_SIZE = 20;
