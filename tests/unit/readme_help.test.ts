/** README's configuration reference, `--help` and the parser agree. */
import assert from "node:assert/strict";
import { agentHelp, FLAG_SPECS, parseAgentFlags } from "../../src/cli/flags.ts";

const README = new URL("../../README.md", import.meta.url);

Deno.test("README's configuration reference is the real --help output", async () => {
  const text = await Deno.readTextFile(README);
  const match = /<!-- help:begin -->\n+```\n([\s\S]*?)```\n+<!-- help:end -->/.exec(text);
  assert.ok(match, "README has the help:begin/help:end block");
  assert.equal(
    match[1].trimEnd(),
    agentHelp().trimEnd(),
    "README is stale: paste `deno run main.ts --help` between the help markers",
  );
});

Deno.test("every flag --help shows is accepted by the daemon's parser, and only those", () => {
  const help = agentHelp();
  for (const spec of FLAG_SPECS) {
    const shown = new RegExp(`--${spec.name}\\b`).test(help);
    assert.equal(shown, !spec.hidden, spec.name);
    // Each flag's help-printed default is a value its parser accepts.
    const sample = spec.kind === "bool"
      ? [`--${spec.name}`]
      : [`--${spec.name}=${spec.defaultArg}`];
    assert.doesNotThrow(() => parseAgentFlags(sample), spec.name);
  }
  const listed = [...help.matchAll(/^\s+(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1]);
  assert.deepEqual(
    listed.sort(),
    FLAG_SPECS.filter((s) => !s.hidden).map((s) => s.name).sort(),
  );
});
