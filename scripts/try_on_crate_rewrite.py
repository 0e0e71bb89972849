#!/usr/bin/env python3
"""Rewrites a crate's tests for scripts/try-on-crate.sh.

  try_on_crate_rewrite.py attrs FILE...       add #[leakcheck::leak_check] to every test
  try_on_crate_rewrite.py attrs-src FILE...   the same as #[cfg_attr(test, leakcheck::leak_check)]
  try_on_crate_rewrite.py test-main FILE...   add leakcheck::verify_test_main!(); at the top
  try_on_crate_rewrite.py summarize RUNS TARGETS   the table of try-on-crate.sh's runs

`attrs` puts one `#[leakcheck::leak_check]` per test function, on its own
line with the attribute's indentation:
  - above the first tokio attribute of the fn (`#[tokio::test]`,
    `#[tokio::test(...)]`, `#[tokio::main]` when the fn is also `#[test]`);
  - otherwise directly below `#[rstest]` (rstest then copies it onto each case);
  - otherwise above `#[test]`.
A fn that already has a leak_check attribute is left alone. Lines inside
comments, strings and raw strings are never touched (a small lexer tracks
them), so a `#[test]` in a doc example or in a trybuild source string stays.

Prints, per file, how many attributes it added (to stdout).
"""
import re
import sys

LEAK = "#[leakcheck::leak_check]"
# In src/ a `#[test]` fn need not sit in a `#[cfg(test)]` module, and the
# attribute is resolved before rustc drops the fn from a non-test build, in
# which the dev-dependency leakcheck does not exist.
LEAK_SRC = "#[cfg_attr(test, leakcheck::leak_check)]"


def code_line_starts(text):
    """For each line, whether it starts in plain code (not inside a block
    comment, string or raw string). Returns a list of booleans, one a line."""
    starts = [True]
    i, n = 0, len(text)
    state = "code"  # code | block | str | raw
    depth = 0  # block comment nesting
    hashes = 0  # raw string hashes
    while i < n:
        c = text[i]
        if c == "\n":
            starts.append(state == "code")
            i += 1
            continue
        if state == "code":
            if text.startswith("//", i):
                j = text.find("\n", i)
                i = n if j < 0 else j
                continue
            if text.startswith("/*", i):
                state, depth = "block", 1
                i += 2
                continue
            m = re.match(r'(?:b|c)?r(#*)"', text[i:i + 300])
            if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                state, hashes = "raw", len(m.group(1))
                i += m.end()
                continue
            if c == '"':
                state = "str"
                i += 1
                continue
            if c == "'":
                # char literal ('a', '\n', '\u{..}', '"') or a lifetime ('a)
                m = re.match(r"'(?:\\(?:u\{[0-9a-fA-F_]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'", text[i:i + 16])
                i += m.end() if m else 1
                continue
            i += 1
        elif state == "block":
            if text.startswith("/*", i):
                depth += 1
                i += 2
            elif text.startswith("*/", i):
                depth -= 1
                i += 2
                if depth == 0:
                    state = "code"
            else:
                i += 1
        elif state == "str":
            if c == "\\":
                # keep an escaped newline's line start marked as inside the string
                i += 1
                if i < n and text[i] == "\n":
                    starts.append(False)
                i += 1
            elif c == '"':
                state = "code"
                i += 1
            else:
                i += 1
        elif state == "raw":
            if c == '"' and text.startswith("#" * hashes, i + 1):
                state = "code"
                i += 1 + hashes
            else:
                i += 1
    return starts


def attr_end(lines, li, col):
    """The (line, col) just past the attribute that starts with `#[` at
    lines[li][col], matching brackets and skipping strings."""
    depth = 0
    in_str = False
    while li < len(lines):
        s = lines[li]
        while col < len(s):
            c = s[col]
            if in_str:
                if c == "\\":
                    col += 1
                elif c == '"':
                    in_str = False
            elif s.startswith("//", col):
                break
            elif c == '"':
                in_str = True
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    return li, col + 1
            col += 1
        li += 1
        col = 0
    return None


ATTR_START = re.compile(r"^(\s*)#\s*\[")


def attr_path(text):
    m = re.match(r"#\s*\[\s*((?:::)?\s*[A-Za-z_][A-Za-z0-9_]*(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)*)", text)
    return re.sub(r"\s+", "", m.group(1)).lstrip(":") if m else ""


def is_tokio(path):
    return path in ("tokio::test", "tokio::main")


def rewrite_attrs(text, leak=LEAK):
    lines = text.split("\n")
    code = code_line_starts(text)
    out_inserts = {}  # line index -> indentation to insert above it
    li = 0
    added = 0
    while li < len(lines):
        m = ATTR_START.match(lines[li])
        if not (code[li] and m) or lines[li].lstrip().startswith("#!"):
            li += 1
            continue
        # A group: consecutive outer attributes (comment and blank lines between allowed).
        group = []  # (start line, indent, path, end line)
        j = li
        while j < len(lines):
            m = ATTR_START.match(lines[j])
            stripped = lines[j].strip()
            if code[j] and m and not stripped.startswith("#!"):
                end = attr_end(lines, j, m.end() - 1)
                if end is None:
                    break
                end_li, end_col = end
                path = attr_path(lines[j][len(m.group(1)):])
                group.append((j, m.group(1), path, end_li))
                rest = lines[end_li][end_col:].strip()
                j = end_li + 1
                if rest and not rest.startswith("//"):
                    break  # the item starts on the attribute's line
                continue
            if code[j] and (stripped == "" or stripped.startswith("//")):
                j += 1
                continue
            break
        paths = [g[2] for g in group]
        last = lambda p: p.split("::")[-1]
        if any(last(p) == "leak_check" for p in paths):
            pass
        elif any(p == "tokio::test" or (p == "tokio::main" and "test" in paths) for p in paths):
            k = next(g for g in group if g[2] == "tokio::test" or (g[2] == "tokio::main" and "test" in paths))
            out_inserts[k[0]] = k[1]
        elif any(last(p) == "rstest" for p in paths):
            idx = next(n for n, g in enumerate(group) if last(g[2]) == "rstest")
            if idx + 1 < len(group):
                out_inserts[group[idx + 1][0]] = group[idx + 1][1]
            elif group[idx][3] + 1 < len(lines) and group[idx][3] < j:
                # the last attribute: above the line after it (the fn)
                out_inserts[group[idx][3] + 1] = group[idx][1]
            else:
                # `#[rstest] fn ..` on one line: above it; leak_check moves itself below
                out_inserts[group[idx][0]] = group[idx][1]
        elif "test" in paths:
            k = next(g for g in group if g[2] == "test")
            out_inserts[k[0]] = k[1]
        li = max(j, li + 1)
    out = []
    for n, line in enumerate(lines):
        if n in out_inserts:
            out.append(out_inserts[n] + leak)
            added += 1
        out.append(line)
    return "\n".join(out), added


def add_test_main(text):
    """Insert the macro after the file's leading inner attributes and inner
    doc comments (which must come first)."""
    lines = text.split("\n")
    code = code_line_starts(text)
    i = 0
    insert_at = 0
    while i < len(lines):
        s = lines[i].strip()
        if not code[i]:
            i += 1
            continue
        if s == "" or (s.startswith("//") and not s.startswith("//!")):
            i += 1
            continue
        if s.startswith("//!"):
            i += 1
            insert_at = i
            continue
        if s.startswith("/*!") or s.startswith("/*"):
            while i < len(lines) and "*/" not in lines[i]:
                i += 1
            i += 1
            if s.startswith("/*!"):
                insert_at = i
            continue
        if s.startswith("#!") and not s.startswith("#!/"):
            m = re.match(r"^\s*#!\s*\[", lines[i])
            end = attr_end(lines, i, m.end() - 1) if m else None
            if end is None:
                break
            i = end[0] + 1
            insert_at = i
            continue
        break
    lines.insert(insert_at, "leakcheck::verify_test_main!();")
    return "\n".join(lines)


LIBTEST_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b")
LIBTEST_RESULT = re.compile(
    r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;")
NEXTEST_LINE = re.compile(
    r"^\s*([A-Z][A-Z-]*(?: \d+/\d+)?)\s+\[[^\]]*\]\s+(?:\(\s*\d+/\s*\d+\)\s+)?(\S+)\s+(\S+)\s*$")
NEXTEST_SUMMARY = re.compile(r"^\s*Summary \[[^\]]*\] +(\d+) tests? run: (.*)$")


def parse_libtest(log):
    tests, counts = {}, None
    for line in log.splitlines():
        m = LIBTEST_LINE.match(line)
        if m:
            tests[m.group(1)] = {"ok": "pass", "FAILED": "fail", "ignored": "ignored"}[m.group(2)]
            continue
        m = LIBTEST_RESULT.match(line)
        if m:
            p, f, i = map(int, m.groups())
            c = counts or [0, 0, 0]
            counts = [c[0] + p, c[1] + f, c[2] + i]
    return tests, counts


def parse_nextest(log):
    tests, counts = {}, None
    for line in log.splitlines():
        m = NEXTEST_LINE.match(line)
        if m and "::" in m.group(2) or (m and m.group(1) in ("PASS", "FAIL", "SKIP")):
            status = m.group(1)
            if status.startswith(("TRY", "RETRY", "SLOW", "START", "DELAY", "TERMINATING", "CANCEL")):
                continue
            if status in ("PASS", "LEAK"):
                tests[m.group(3)] = "pass"
            elif status == "SKIP":
                tests[m.group(3)] = "ignored"
            else:
                tests[m.group(3)] = "fail"
            continue
        m = NEXTEST_SUMMARY.match(line)
        if m:
            counts = [0, 0, 0]
            for part in m.group(2).split(","):
                part = part.strip()
                n = re.match(r"(\d+) (\S+)", part)
                if not n:
                    continue
                k, what = int(n.group(1)), n.group(2)
                if what == "passed":
                    counts[0] += k
                elif what == "skipped":
                    counts[2] += k
                elif what in ("failed", "timed", "leaky"):
                    if what != "leaky":
                        counts[1] += k
    if counts is None and tests:
        vals = list(tests.values())
        counts = [vals.count("pass"), vals.count("fail"), vals.count("ignored")]
    return tests, counts


def summarize(runs_path, targets_path):
    targets = [line.split("\t")[1] for line in open(targets_path).read().splitlines() if line]
    runs = {}
    for line in open(runs_path).read().splitlines():
        mode, target, kind, rc, log = line.split("\t")
        entry = {"kind": kind, "rc": int(rc), "log": log, "tests": {}, "counts": None}
        if kind == "ran":
            text = open(log, errors="replace").read()
            parse = parse_nextest if mode.endswith("-nextest") else parse_libtest
            entry["tests"], entry["counts"] = parse(text)
        runs[(mode, target)] = entry
    modes = []
    for (mode, _) in runs:
        if mode not in modes:
            modes.append(mode)

    def baseline(mode):
        return "base-nextest" if mode.endswith("-nextest") else "base-test"

    header = ["mode", "passed", "failed", "ignored", "compile errors: targets (tests)",
              "runs that exited non-zero with no failed test", "tests differing from baseline"]
    rows, diffs = [], []
    for mode in modes:
        p = f = i = ce_t = ce_n = bad_exit = differ = 0
        for target in targets:
            e = runs.get((mode, target))
            if e is None:
                continue
            b = runs.get((baseline(mode), target))
            if e["kind"] == "build-error":
                ce_t += 1
                n = len(b["tests"]) if b and b["kind"] == "ran" else 0
                ce_n += n
                if mode != baseline(mode) and n:
                    differ += n
                    diffs.append((mode, target, "(all %d tests)" % n, "compile error", e["log"]))
                continue
            c = e["counts"] or [0, 0, 0]
            p, f, i = p + c[0], f + c[1], i + c[2]
            failed_names = [t for t, s in e["tests"].items() if s == "fail"]
            if e["rc"] != 0 and not failed_names and c[1] == 0:
                bad_exit += 1
                why = "timeout" if e["rc"] == 124 else "exit code %d" % e["rc"]
                diffs.append((mode, target, "(binary)", why, e["log"]))
            if mode == baseline(mode) or not b or b["kind"] != "ran":
                continue
            for t, s in sorted(e["tests"].items()):
                bs = b["tests"].get(t, "absent")
                if s != bs:
                    differ += 1
                    diffs.append((mode, target, t, "%s -> %s" % (bs, s), e["log"]))
            for t in sorted(set(b["tests"]) - set(e["tests"])):
                differ += 1
                diffs.append((mode, target, t, "%s -> absent" % b["tests"][t], e["log"]))
        rows.append([mode, str(p), str(f), str(i), "%d (%d)" % (ce_t, ce_n), str(bad_exit),
                     "-" if mode == baseline(mode) else str(differ)])
    widths = [max(len(r[k]) for r in rows + [header]) for k in range(len(header))]
    fmt = lambda r: "| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |"
    print(fmt(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt(r))
    print()
    if diffs:
        print("Differences from the baseline (and runs that exited non-zero):")
        for mode, target, t, what, log in diffs:
            print(f"  {mode:<17} {target}: {t}: {what}   [{log}]")
    else:
        print("No differences from the baseline.")


def main():
    mode, files = sys.argv[1], sys.argv[2:]
    if mode == "summarize":
        summarize(*files)
        return
    for f in files:
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        if mode in ("attrs", "attrs-src"):
            new, added = rewrite_attrs(text, LEAK if mode == "attrs" else LEAK_SRC)
            if added:
                print(f"{f}: {added}")
        elif mode == "test-main":
            new = add_test_main(text)
            print(f"{f}: verify_test_main!")
        else:
            sys.exit(f"unknown mode {mode!r}")
        if new != text:
            with open(f, "w", encoding="utf-8") as fh:
                fh.write(new)


if __name__ == "__main__":
    main()
