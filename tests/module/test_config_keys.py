"""The documentation names every configuration key and module argument of the table in
pam_k8stoken/core/config.c, with the table's defaults and ranges, and nothing else.

`k8stoken config-keys` prints the table (key, where, kind, default, range, description,
tab-separated). Checked against it:
- conf/pam_k8stoken.conf: a `key = ...` or `#key = ...` line for every file key and for no
  other name; a stated "default X" and "range A-B" equal the table's; a commented-out
  `#key = value` line of a key that has a default shows that default;
- man/pam_k8stoken.conf.5, section KEYS: a `.TP` entry for every file key and for no other
  name; its "Default X" and "range A to B" equal the table's;
- man/pam_k8stoken.8, section OPTIONS, and README.md, section "Module arguments": an entry
  for every module argument (`key=` when it takes a value, `key` for a flag) and no other; a
  stated default equals the table's.
A key without a default in the table may say what happens instead ("none", "gethostname(2)",
"fixed at build time"), but not state a value. Each check is a function over texts; the
*_can_fail tests plant one fault each and expect it reported."""
import os
import re
import subprocess

import pytest

from harness import BUILD, ROOT

CONF = "conf/pam_k8stoken.conf"
MAN5 = "man/pam_k8stoken.conf.5"
MAN8 = "man/pam_k8stoken.8"
README = "README.md"


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def table():
    """{key: row} from `k8stoken config-keys`."""
    proc = subprocess.run([os.path.join(BUILD, "k8stoken"), "config-keys"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc
    rows = {}
    for line in proc.stdout.splitlines():
        key, where, kind, default, rng, doc = line.split("\t")
        lo, _, hi = rng.partition("-")
        rows[key] = {"file": "file" in where.split(","), "arg": "argument" in where.split(","),
                     "flag": kind == "flag", "default": None if default == "-" else default,
                     "range": None if rng == "-" else (int(lo), int(hi)), "doc": doc}
    assert rows and all(r["doc"] for r in rows.values())
    return rows


# ---------------------------------------------------------------- text helpers

def is_value(text):
    """Whether a stated default is a value (which the table must then have)."""
    return bool(re.fullmatch(r'[0-9]+|yes|no|true|false|auto|"[^"]*"|/\S*', text))


def stated_default(text):
    """The default a description states ("default 30, range", "Default: none.",
    'default "Kubernetes token: "'), or None."""
    m = re.search(r'\b[Dd]efault:?\s+("[^"]*"|.*?)(?=[,;]\s|\.\s|\.?$|\s\()', text)
    return m.group(1).strip() if m else None


def stated_range(text):
    m = re.search(r"\brange (\d+)(?:-| to )(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def default_problems(where, key, row, text, computed_ok=()):
    """A stated default and range against the table's."""
    problems = []
    default = stated_default(text)
    if row["default"] is not None and default != row["default"]:
        problems.append(f"{where}: {key}: says default {default!r}, the table {row['default']!r}")
    if row["default"] is None and default is not None and is_value(default) and \
            not any(c in text for c in computed_ok):
        problems.append(f"{where}: {key}: says default {default!r}, the table has none")
    rng = stated_range(text)
    if rng is not None and rng != row["range"]:
        problems.append(f"{where}: {key}: says range {rng}, the table {row['range']}")
    if row["range"] is not None and rng is None:
        problems.append(f"{where}: {key}: does not state the range {row['range']}")
    return problems


ROFF_ESCAPES = [(r"\(dq", '"'), (r"\(aq", "'"), (r"\ ", " "), (r"\-", "-"), (r"\&", ""),
                (r"\c", ""), (r"\e", "\\")]


def roff_text(lines):
    """Plain text of roff lines: font macros joined as printed, other requests dropped."""
    words = []
    for line in lines:
        m = re.match(r"\.(B|I|BR|RB|IR|RI|BI|IB)(?:\s+(.*))?$", line)
        if m:
            args = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', m.group(2) or "")
            args = [a or b for a, b in args]
            line = (" " if m.group(1) in ("B", "I") else "").join(args)
        elif line.startswith((".", "'")):
            continue
        for esc, plain in ROFF_ESCAPES:
            line = line.replace(esc, plain)
        words.append(line)
    return " ".join(words)


def man_section(text, name):
    m = re.search(r"^\.SH " + re.escape(name) + r"\n(.*?)(?=^\.SH |\Z)", text, re.M | re.S)
    assert m, f"no section {name}"
    return m.group(1)


def man_entries(section, head):
    """[(key, '=' or '', body text)] of the .TP/.TQ entries whose tag matches head."""
    entries, lines = [], section.splitlines()
    for i, line in enumerate(lines):
        if i == 0 or lines[i - 1] not in (".TP", ".TQ"):
            continue
        m = re.match(head, line)
        if not m:
            continue
        body = []
        for nxt in lines[i + 1:]:
            if re.match(r"\.(TP|TQ|PP|SS|SH)\b", nxt):
                break
            body.append(nxt)
        entries.append((m.group(1), m.group(2) if m.lastindex > 1 else "", roff_text(body)))
    return entries


# ---------------------------------------------------------------- the checks

def conf_problems(table, text):
    file_keys = {k for k, r in table.items() if r["file"]}
    seen, problems = set(), []
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r"(#? ?)([a-z][a-z0-9_]*)\s*=\s*(.*)$", line)
        if not m:
            continue
        prefix, key, rest = m.groups()
        where = f"{CONF}:{no}"
        if key not in file_keys:
            problems.append(f"{where}: {key} is not a configuration key")
            continue
        seen.add(key)
        row = table[key]
        if prefix == "# ":
            # "# key = SYNTAX      default 2, range 1-30"
            note = re.split(r"\s{2,}", rest, maxsplit=1)
            problems += default_problems(where, key, row, note[1] if len(note) > 1 else "")
        elif prefix == "#" and row["default"] is not None and rest != row["default"]:
            problems.append(f"{where}: {key}: the commented-out line shows {rest!r}, not the "
                            f"default {row['default']!r}")
    problems += [f"{CONF}: no line for {k}" for k in sorted(file_keys - seen)]
    return problems


def man5_problems(table, text):
    file_keys = {k for k, r in table.items() if r["file"]}
    entries = man_entries(man_section(text, "KEYS"), r'\.B[IR]? "?([a-z][a-z0-9_]*) = ')
    problems = []
    for key, _, body in entries:
        if key not in file_keys:
            problems.append(f"{MAN5}: KEYS names {key}, which is not a configuration key")
        else:
            problems += default_problems(MAN5, key, table[key], body)
    seen = {k for k, _, _ in entries}
    problems += [f"{MAN5}: KEYS has no entry for {k}" for k in sorted(file_keys - seen)]
    return problems


def arg_form_problems(where, table, found):
    """found: [(key, '=' or '', description)]."""
    args = {k for k, r in table.items() if r["arg"]}
    problems = []
    for key, eq, text in found:
        if key not in args:
            problems.append(f"{where}: names {key}{eq}, which is not a module argument")
            continue
        if eq != ("" if table[key]["flag"] else "="):
            problems.append(f"{where}: {key}{eq}: the table says "
                            + ("a flag" if table[key]["flag"] else "it takes a value"))
        problems += default_problems(where, key, table[key], text,
                                     computed_ok=("build time", "for tests"))
    seen = {k for k, _, _ in found}
    problems += [f"{where}: no entry for module argument {k}" for k in sorted(args - seen)]
    return problems


def man8_problems(table, text):
    found = man_entries(man_section(text, "OPTIONS"), r"\.BI? ([a-z][a-z0-9_]*)(=?)")
    return arg_form_problems(f"{MAN8} OPTIONS", table, found)


def readme_problems(table, text):
    m = re.search(r"^## Module arguments\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        return [f"{README}: no section \"Module arguments\""]
    found = []
    for row in re.finditer(r"^\| `([a-z][a-z0-9_]*)(=?)[A-Z]*` \|(.*)\|\s*$", m.group(1), re.M):
        # "(default `/etc/...`; for tests)" -> "default /etc/.... for tests)"
        text = re.sub(r"\(default ([^);]*)[);]", r"default \1.", row.group(3).replace("`", ""))
        found.append((row.group(1), row.group(2), text.strip()))
    return arg_form_problems(f"{README} \"Module arguments\"", table, found)


# ---------------------------------------------------------------- on this tree

def test_table_rows(table):
    # the kinds of rows the checks rely on are there
    assert table["server"]["file"] and not table["server"]["arg"]
    assert table["conf"]["arg"] and not table["conf"]["file"] and not table["conf"]["flag"]
    assert table["debug"]["flag"] and table["cache_ttl"]["range"] == (0, 3600)


def test_sample_conf(table):
    assert conf_problems(table, read(CONF)) == []


def test_conf_man_page(table):
    assert man5_problems(table, read(MAN5)) == []


def test_module_man_page(table):
    assert man8_problems(table, read(MAN8)) == []


def test_readme_module_arguments(table):
    assert readme_problems(table, read(README)) == []


# ---------------------------------------------------------------- the checks can fail

def without_lines(text, word):
    return "\n".join(line for line in text.splitlines() if word not in line) + "\n"


def test_conf_check_can_fail(table):
    text = read(CONF)
    assert f"{CONF}: no line for negative_cache_ttl" in \
        conf_problems(table, without_lines(text, "negative_cache_ttl"))
    assert any("not a configuration key" in p for p in
               conf_problems(table, text + "#retries = 3\n"))
    assert any("timeout: says default '7'" in p for p in
               conf_problems(table, text.replace("default 5, range 1-60", "default 7, range 1-60")))
    assert any("range" in p for p in
               conf_problems(table, text.replace("range 1-60", "range 1-90")))
    assert any("commented-out" in p for p in
               conf_problems(table, text.replace("#cache_ttl = 30", "#cache_ttl = 60")))
    assert any("debug is not a configuration key" in p for p in
               conf_problems(table, text + "#debug = yes\n"))


def test_man5_check_can_fail(table):
    text = read(MAN5)
    assert f"{MAN5}: KEYS has no entry for jwks_refresh" in \
        man5_problems(table, text.replace('.BI "jwks_refresh = " seconds', ".B jwks_refresh"))
    assert any("retries, which is not" in p for p in
               man5_problems(table, text.replace(".SH MAPPING RULES",
                                                 '.TP\n.BI "retries = " n\nDefault 3.\n'
                                                 ".SH MAPPING RULES")))
    assert any("min_uid: says default '500'" in p for p in
               man5_problems(table, text.replace("Default 1000, range", "Default 500, range")))
    assert any("access_verb: says default 'sudo'" in p for p in
               man5_problems(table, text.replace(".BI \"access_verb = \" template\nDefault\n"
                                                 ".BR login ;",
                                                 ".BI \"access_verb = \" template\nDefault\n"
                                                 ".BR sudo ;")))


def test_module_docs_check_can_fail(table):
    man8, readme = read(MAN8), read(README)
    assert f"{MAN8} OPTIONS: no entry for module argument try_first_pass" in \
        man8_problems(table, man8.replace(".TP\n.B try_first_pass\n", ".PP\n"))
    assert any("names nullok" in p for p in
               man8_problems(table, man8.replace(".SH MODULE TYPES PROVIDED",
                                                 ".TP\n.B nullok\nEmpty tokens.\n"
                                                 ".SH MODULE TYPES PROVIDED")))
    assert any("the table says a flag" in p for p in
               man8_problems(table, man8.replace(".TP\n.B debug\n", ".TP\n.BI debug= n\n")))
    assert f"{README} \"Module arguments\": no entry for module argument ignore_non_token" in \
        readme_problems(table, without_lines(readme, "| `ignore_non_token` |"))
    assert any("conf: says default" in p for p in
               readme_problems(table, readme.replace("(default `/etc/security/pam_k8stoken.conf`)",
                                                     "(default `/etc/pam_k8stoken.conf`)")))
