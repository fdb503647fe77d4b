"""The documents list exactly the reasons of pam_k8stoken/core/reason_list.h, with their PAM codes.

The rows of reason_list.h are the one list of outcomes (docs/design.md §4.2). This test reads
them and checks, for every reason, that
- docs/design.md §4.2 has a table row with its PAM result and class;
- man/pam_k8stoken.conf.5 (section Reasons) has an entry with its PAM result (an entry that
  names none shares the one before it: "as are the following four");
- README.md "Log line" names it among the reasons;
- README.md "Return values (auth)" has its PAM result;
and that none of these names a reason the list lacks. That the columns of one row agree with
one another (class, PAM code, priority, exit status) is tests/unit/test_reason.c's job.

Each check is a function over the texts, run on this repository and, in the *_can_fail tests,
on the same texts with one planted fault that it must report. No build, no root, no network."""
import collections
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = "pam_k8stoken/core/reason_list.h"
DESIGN = "docs/design.md"
README = "README.md"
MAN = "man/pam_k8stoken.conf.5"
FILES = (LIST, DESIGN, README, MAN)

Reason = collections.namedtuple("Reason", "id name cls pam log tool_exit what")
ROW = re.compile(r'KT_REASON\(\s*(\w+)\s*,\s*"([a-z_]+)"\s*,\s*KT_CLASS_(ALLOW|DENY|UNAVAILABLE)'
                 r'\s*,\s*(PAM_\w+)\s*,\s*(LOG_\w+)\s*,\s*(EXIT_\w+)\s*,\s*"([^"\\]*)"\s*\)')
PAM = re.compile(r"\bPAM_[A-Z_]+\b")


def read_texts(root=ROOT):
    texts = {}
    for name in FILES:
        with open(os.path.join(root, name), encoding="utf-8") as f:
            texts[name] = f.read()
    return texts


def section(text, heading, where):
    """The text under a markdown heading that starts with `heading`, up to the next heading
    of the same or a higher level."""
    level = heading.split(" ")[0]
    m = re.search(r"^" + re.escape(heading) + r".*$", text, re.M)
    assert m, f"{where}: no heading {heading!r}"
    end = re.compile(r"^#{1,%d} " % len(level), re.M).search(text, m.end())
    return text[m.end():end.start() if end else len(text)]


# ---------------------------------------------------------------- the list

def reasons(texts):
    """The rows of reason_list.h, in order; a row this test cannot read is an error, so that
    a malformed row is not silently left out of every check."""
    code = re.sub(r"/\*.*?\*/", "", texts[LIST], flags=re.S)
    rows = [Reason(m[0], m[1], m[2].lower(), *m[3:]) for m in ROW.findall(code)]
    calls = code.count("KT_REASON(")
    assert calls == len(rows), f"{LIST}: {calls - len(rows)} row(s) not of the form " \
        'KT_REASON(ID, "name", KT_CLASS_X, PAM_X, LOG_X, EXIT_X, "what")'
    return rows


def list_problems(rows):
    problems = []
    for field in ("id", "name"):
        seen = collections.Counter(getattr(r, field) for r in rows)
        problems += [f"{LIST}: {field} {v} is used by {n} rows" for v, n in seen.items() if n > 1]
    if not rows or rows[0].id != "OK":
        problems.append(f"{LIST}: the first row must be OK (KT_R_OK = 0)")
    return problems


# ---------------------------------------------------------------- the documents

def design_table(texts):
    """docs/design.md §4.2: {name: (first PAM code of the result cell, class)}."""
    found = {}
    for line in section(texts[DESIGN], "### 4.2 ", DESIGN).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([a-z_]+)`", cells[0]) if len(cells) == 4 else None
        if m:
            codes = PAM.findall(cells[2])
            found[m[1]] = (codes[0] if codes else None, cells[3])
    return found


def man_reasons(texts):
    """man/pam_k8stoken.conf.5 .SS Reasons: {name: PAM code}, an entry without a code of its
    own sharing the one before it."""
    m = re.search(r"^\.SS Reasons\n(.*?)^\.S[HS] ", texts[MAN], re.M | re.S)
    assert m, f"{MAN}: no .SS Reasons section"
    found, code = {}, None
    for entry in re.split(r"^\.TP(?: \d+)?\n", m[1], flags=re.M)[1:]:
        name = re.match(r"\.B ([a-z_]+)\n", entry)
        if not name:
            continue
        own = re.search(r"^\.RB \( (PAM_[A-Z_]+)", entry, re.M)
        code = own[1] if own else code
        found[name[1]] = code
    return found


def readme_log_reasons(texts):
    """README.md "Log line": the names in "Reasons: `a`, `b`, ... `z`."."""
    text = section(texts[README], "## Log line", README)
    m = re.search(r"^Reasons:((?:\s*`[a-z_]+`,?)+)\.", text, re.M)
    assert m, f'{README} "Log line": no "Reasons: `...`, ..." list'
    return re.findall(r"`([a-z_]+)`", m[1])


def readme_return_codes(texts):
    """README.md "Return values (auth)": every PAM code in the result column."""
    codes = set()
    for line in section(texts[README], "## Return values", README).splitlines():
        if line.startswith("|"):
            codes |= set(PAM.findall(line.strip().strip("|").split("|")[-1]))
    return codes


def same_names(where, documented, rows):
    names = {r.name for r in rows}
    return ([f"{where}: reason {r.name} ({r.pam}) is missing" for r in rows
             if r.name not in documented] +
            [f"{where}: lists reason {n}, which {LIST} lacks" for n in sorted(documented)
             if n not in names])


def doc_problems(texts):
    rows = reasons(texts)
    problems = list_problems(rows)

    table = design_table(texts)
    problems += same_names(f"{DESIGN} §4.2", table, rows)
    for r in rows:
        pam, cls = table.get(r.name, (r.pam, r.cls))
        if pam != r.pam:
            problems.append(f"{DESIGN} §4.2: {r.name} says {pam}, the code {r.pam}")
        if cls != r.cls:
            problems.append(f"{DESIGN} §4.2: {r.name} is of class {cls}, in the code {r.cls}")

    man = man_reasons(texts)
    problems += same_names(f"{MAN} Reasons", man, rows)
    problems += [f"{MAN} Reasons: {r.name} says {man[r.name]}, the code {r.pam}"
                 for r in rows if man.get(r.name, r.pam) != r.pam]

    problems += same_names(f'{README} "Log line"', set(readme_log_reasons(texts)), rows)
    codes = readme_return_codes(texts)
    problems += [f'{README} "Return values (auth)": no row gives {pam} (reason {r.name})'
                 for pam, r in {r.pam: r for r in rows}.items() if pam not in codes]
    return problems


# ---------------------------------------------------------------- this repository

@pytest.fixture(scope="module")
def texts():
    return read_texts()


def test_the_list_has_every_reason_once(texts):
    rows = reasons(texts)
    assert len(rows) >= 30
    assert list_problems(rows) == []


def test_the_documents_list_exactly_the_reasons_with_their_pam_codes(texts):
    assert doc_problems(texts) == []


# ---------------------------------------------------------------- each check can fail

def planted(texts, name, old, new, count=1):
    assert texts[name].count(old) >= 1, f"{name} no longer contains {old!r}"
    return {**texts, name: texts[name].replace(old, new, count)}


NEW_ROW = ('KT_REASON(REVOKED, "revoked",\n          KT_CLASS_DENY, PAM_PERM_DENIED, LOG_NOTICE, '
           'EXIT_DENY,\n          "the credential was revoked")\n')


def test_a_new_row_is_missing_from_every_document(texts):
    bad = {**texts, LIST: texts[LIST] + NEW_ROW}
    problems = doc_problems(bad)
    for where in (f"{DESIGN} §4.2", f"{MAN} Reasons", f'{README} "Log line"'):
        assert f"{where}: reason revoked (PAM_PERM_DENIED) is missing" in problems
    assert f'{README} "Return values (auth)": no row gives PAM_PERM_DENIED (reason revoked)' \
        in problems


def test_a_malformed_or_repeated_row_can_fail(texts):
    with pytest.raises(AssertionError, match="not of the form"):
        reasons({**texts, LIST: texts[LIST] + 'KT_REASON(REVOKED, "revoked", PAM_AUTH_ERR)\n'})
    bad = planted(texts, LIST, 'KT_REASON(TIMEOUT, "timeout"', 'KT_REASON(TIMEOUT, "transport"')
    assert f"{LIST}: name transport is used by 2 rows" in list_problems(reasons(bad))


def test_a_reason_the_code_lacks_can_fail(texts):
    bad = planted(texts, DESIGN, "| `deny_rule` |", "| `deny_rules` |")
    problems = doc_problems(bad)
    assert f"{DESIGN} §4.2: lists reason deny_rules, which {LIST} lacks" in problems
    assert f"{DESIGN} §4.2: reason deny_rule (PAM_AUTH_ERR) is missing" in problems
    bad = planted(texts, MAN, ".B not_mapped\n", ".B not_mapped\nNo map rule.\n.TP\n.B unmapped\n")
    assert f"{MAN} Reasons: lists reason unmapped, which {LIST} lacks" in doc_problems(bad)
    bad = planted(texts, README, "`deny_rule`, `not_mapped`", "`deny_rule`, `denied_rule`, "
                  "`not_mapped`")
    assert f'{README} "Log line": lists reason denied_rule, which {LIST} lacks' in doc_problems(bad)


def test_a_wrong_pam_code_or_class_can_fail(texts):
    bad = planted(texts, DESIGN, "| `PAM_USER_UNKNOWN` | deny |", "| `PAM_AUTH_ERR` | deny |")
    assert f"{DESIGN} §4.2: unknown_user says PAM_AUTH_ERR, the code PAM_USER_UNKNOWN" \
        in doc_problems(bad)
    bad = planted(texts, DESIGN, "| `PAM_SERVICE_ERR` | unavailable |",
                  "| `PAM_SERVICE_ERR` | deny |")
    assert f"{DESIGN} §4.2: config is of class deny, in the code unavailable" in doc_problems(bad)
    # the code changes instead of the document
    bad = planted(texts, LIST, "KT_CLASS_DENY, PAM_USER_UNKNOWN", "KT_CLASS_DENY, PAM_AUTH_ERR")
    problems = doc_problems(bad)
    assert f"{DESIGN} §4.2: unknown_user says PAM_USER_UNKNOWN, the code PAM_AUTH_ERR" in problems
    assert f"{MAN} Reasons: unknown_user says PAM_USER_UNKNOWN, the code PAM_AUTH_ERR" in problems


def test_a_man_entry_shares_the_code_before_it(texts):
    """"as are the following four": the entries after bad_signature have no code of their own."""
    man = man_reasons(texts)
    assert man["unknown_key"] == man["issuer_mismatch"] == "PAM_AUTH_ERR"
    assert man["timeout"] == man["helper_failed"] == "PAM_AUTHINFO_UNAVAIL"
    bad = planted(texts, MAN, ".B circuit_open\nEvery server is in its backoff after failing; "
                  "no request was sent\n.RB ( PAM_AUTHINFO_UNAVAIL ).",
                  ".B circuit_open\nEvery server is in its backoff after failing; "
                  "no request was sent.")
    assert man_reasons(bad)["circuit_open"] == "PAM_AUTHINFO_UNAVAIL"   # from helper_failed
    bad = planted(texts, MAN, ".B config\nThe helper refused the configuration\n"
                  ".RB ( PAM_SERVICE_ERR ).", ".B config\nThe helper refused the configuration.")
    assert f"{MAN} Reasons: config says PAM_AUTHINFO_UNAVAIL, the code PAM_SERVICE_ERR" \
        in doc_problems(bad)


def test_a_pam_code_missing_from_return_values_can_fail(texts):
    bad = planted(texts, README, "| account lookup failed (NSS error) | `PAM_SYSTEM_ERR` |", "")
    assert f'{README} "Return values (auth)": no row gives PAM_SYSTEM_ERR (reason system)' \
        in doc_problems(bad)
