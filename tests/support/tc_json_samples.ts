/** `tc -json` output samples shared by the cmdline parser and driver tests. */

/**
 * `tc -s -json filter show dev rep0 ingress` in the form iproute2 prints it
 * (tc/f_flower.c flower_print_opt: `skip_hw`, `in_hw` + `in_hw_count` or
 * `not_in_hw` in the options after the keys; tc/m_action.c
 * tc_print_one_action: `cookie` in the action after its `stats`): a marked
 * filter the NIC holds twice, a marked `skip_hw` filter (software only, so
 * also `not_in_hw`), a filter another tool wrote (no cookie, not in
 * hardware), and one printed by a tc that says nothing about hardware and
 * writes the cookie's bytes upper-case with `:` between them.
 */
export const OFFLOAD_SAMPLE = `[{"protocol":"ip","pref":11,"kind":"flower","chain":0},` +
  `{"protocol":"ip","pref":11,"kind":"flower","chain":0,"options":{"handle":1,"keys":{"eth_type":"ipv4"},"in_hw":true,"in_hw_count":2,"actions":[{"order":1,"kind":"ct","zone":7,"control_action":{"type":"pipe"},"index":4,"ref":1,"bind":1,"installed":12,"last_used":1,"first_used":11,"stats":{"bytes":1204,"packets":14,"drops":0,"overlimits":0,"requeues":0,"backlog":0,"qlen":0},"cookie":"6d6e702d746301","used_hw_stats":["delayed"]},{"order":2,"kind":"gact","control_action":{"type":"goto","chain":1000000},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":5,"ref":1,"bind":1,"installed":12,"last_used":1,"first_used":11,"stats":{"bytes":1204,"packets":14,"drops":0,"overlimits":0,"requeues":0,"backlog":0,"qlen":0}}]}},` +
  `{"protocol":"all","pref":9,"kind":"flower","chain":1000000},` +
  `{"protocol":"all","pref":9,"kind":"flower","chain":1000000,"options":{"handle":1,"keys":{},"skip_hw":true,"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"drop"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":6,"ref":1,"bind":1,"installed":12,"last_used":2,"first_used":9,"stats":{"bytes":336,"packets":4,"drops":4,"overlimits":0,"requeues":0,"backlog":0,"qlen":0},"cookie":"6d6e702d746301"}]}},` +
  `{"protocol":"ip","pref":50000,"kind":"flower","chain":0},` +
  `{"protocol":"ip","pref":50000,"kind":"flower","chain":0,"options":{"handle":1,"keys":{"eth_type":"ipv4","ip_proto":"tcp"},"not_in_hw":true,"actions":[{"order":1,"kind":"gact","control_action":{"type":"pass"},"prob":{"random_type":"none","control_action":{"type":"pass"},"val":0},"index":7,"ref":1,"bind":1,"installed":12,"last_used":12,"first_used":0,"stats":{"bytes":0,"packets":0,"drops":0,"overlimits":0,"requeues":0,"backlog":0,"qlen":0}}]}},` +
  `{"protocol":"ip","pref":50001,"kind":"flower","chain":0,"options":{"handle":1,"keys":{"eth_type":"ipv4"},"actions":[{"order":1,"kind":"gact","control_action":{"type":"pass"},"cookie":"6D:6E"}]}}]`;
