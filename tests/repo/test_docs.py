"""The project's documents are the only ones the tree cites, and every citation resolves.

- No tracked file cites the inputs the project was started from, which are not in this
  repository (the patterns are in FORBIDDEN).
- Every `docs/design.md §N`, `docs/security.md §N` and `docs/kubernetes.md §N` names a section
  that file has; a bare `§N` inside one of these files names a section of that same file.
- Every case id cited after `docs/security.md` (e.g. "docs/security.md D01-D10, E02") and every
  case id in a test's name (test_a04_...) is a case of docs/security.md; every case the
  document must have is there, with a status.
- Every test named in docs/security.md (`tests/FILE::FUNCTION`) exists.

Each check is a function over a tree, run on this repository and, in the *_can_fail tests, on
a small tree with one planted fault that it must report. No root, no network."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THIS = os.path.relpath(os.path.abspath(__file__), ROOT)
DOCS = ("design", "security", "kubernetes")

# Written so that this file does not match itself.
FORBIDDEN = [
    ("the shared inputs directory", r"\.\./shared/|/work/" + r"shared\b"),
    ("PRODUCT.md", r"PRODUCT" + r"(?:\.md|'s|\s*§|\s+section\b)"),
    ("SECURITY.md", r"SECURITY" + r"(?:\.md|\s*§|\s+[A-L][0-9]{2}\b)"),
    ("k8s-api-facts", r"k8s-api-" + r"facts"),
    ("the facts file's sections", r"\bfacts" + r" §"),
    ("TESTING-NOTES", r"TESTING-" + r"NOTES"),
    ("STYLE.md", r"\bSTYLE" + r"\.md"),
]

# The cases docs/security.md must have: the same ids, with the same meaning, as the security
# bar the project was built to.
EXPECTED_CASES = (
    [f"A{i:02d}" for i in range(1, 16)] + [f"B{i:02d}" for i in range(1, 10)] +
    [f"C{i:02d}" for i in range(1, 9)] + [f"D{i:02d}" for i in range(1, 17)] +
    [f"E{i:02d}" for i in range(1, 9)] + [f"F{i:02d}" for i in range(1, 13)] +
    [f"L{i:02d}" for i in range(1, 6)] + [f"H{i:02d}" for i in range(1, 7)] +
    [f"I{i:02d}" for i in range(1, 4)] + [f"J{i:02d}" for i in range(1, 3)]
)

CASE_ID = r"[A-L][0-9]{2}"
SECTION = r"[0-9]+(?:\.[0-9]+)*"
# "docs/design.md §3", "`docs/design.md` §6.2", "docs/kubernetes.md §2, §4, §8", "§1–§4"
DOC_REF = re.compile(r"docs/(" + "|".join(DOCS) + r")\.md`?((?:\s*(?:,|–|-|and)?\s*§\s*"
                     + SECTION + r")+)")
BARE_REF = re.compile(r"((?:§\s*" + SECTION + r"(?:\s*(?:,|–|-|and)\s*(?=§))?)+)")
TEST_REF = re.compile(r"`(tests/[\w./-]+)::(\w+)`")
CASE_ROW = re.compile(r"^\|\s*(" + CASE_ID + r")\s*\|(.*)\|\s*$", re.M)


# ---------------------------------------------------------------- the tree

def tree_files(root):
    """Tracked files plus new ones not ignored (work in progress is checked too). Without
    git (an unpacked source tree) every file but build outputs."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
        names = {n for n in out.decode().split("\0") if n}
    except (OSError, subprocess.CalledProcessError):
        names = set()
        for top, dirs, found in os.walk(root):
            dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", ".pytest_cache")
                       and not (top == root and (d == "build" or d.startswith("build-")))]
            names.update(os.path.relpath(os.path.join(top, f), root) for f in found)
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n)))


def read_text(root, name):
    with open(os.path.join(root, name), "rb") as f:
        data = f.read()
    if b"\0" in data[:8192]:
        return None   # binary
    return data.decode("utf-8", errors="replace")


def texts(root, files):
    for name in files:
        text = read_text(root, name)
        if text is not None:
            yield name, text


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


# ---------------------------------------------------------------- the checks

def forbidden_citations(root, files):
    problems = []
    for name, text in texts(root, files):
        if name == THIS:
            continue
        for what, pattern in FORBIDDEN:
            for m in re.finditer(pattern, text):
                problems.append(f"{name}:{line_of(text, m.start())}: cites {what}: {m.group(0)!r}")
    return problems


def doc_sections(root):
    """{"design": {"1", "2", "2.1", ...}, ...} from the numbered headings of docs/*.md."""
    sections = {}
    for doc in DOCS:
        text = read_text(root, f"docs/{doc}.md") or ""
        sections[doc] = set(re.findall(r"^#{2,6}\s+(" + SECTION + r")\.?\s", text, re.M))
    return sections


def _numbers(run):
    """The section numbers of "§2, §4, §8" or "§1–§4" (a range names both ends and all between)."""
    nums = re.findall(SECTION, run.replace(" ", ""))
    out = list(nums)
    for a, b in re.findall(r"§(" + SECTION + r")\s*[–-]\s*§(" + SECTION + r")", run):
        if "." not in a and "." not in b and int(a) < int(b):
            out += [str(i) for i in range(int(a) + 1, int(b))]
    return out


def section_references(root, files):
    sections = doc_sections(root)
    problems = []
    for name, text in texts(root, files):
        if name == THIS:
            continue
        cited = []
        for m in DOC_REF.finditer(text):
            cited += [(m.start(), m.group(1), n) for n in _numbers(m.group(2))]
        own = re.fullmatch(r"docs/(" + "|".join(DOCS) + r")\.md", name)
        if own:
            # a bare § inside a doc names a section of that doc
            covered = [range(m.start(), m.end()) for m in DOC_REF.finditer(text)]
            for m in BARE_REF.finditer(text):
                if not any(m.start() in r for r in covered):
                    cited += [(m.start(), own.group(1), n) for n in _numbers(m.group(1))]
        for pos, doc, num in cited:
            if num not in sections[doc]:
                problems.append(f"{name}:{line_of(text, pos)}: docs/{doc}.md has no section {num}")
    return problems


def security_cases(root):
    """{id: row text} of the case tables of docs/security.md."""
    text = read_text(root, "docs/security.md") or ""
    return {m.group(1): m.group(2) for m in CASE_ROW.finditer(text)}


def _expand(ids_text):
    """Case ids of a run like "D01-D10, D13, E01, D12/F09" (a range names every id in it)."""
    out = []
    for a, b in re.findall(r"(" + CASE_ID + r")\s*[-–]\s*(" + CASE_ID + r")", ids_text):
        if a[0] == b[0] and int(a[1:]) <= int(b[1:]):
            out += [f"{a[0]}{i:02d}" for i in range(int(a[1:]), int(b[1:]) + 1)]
        else:
            out += [a, b]
    out += re.findall(r"\b" + CASE_ID + r"\b", ids_text)
    return out


def cited_case_ids(root, files):
    """(file, line, id) for every case id cited after docs/security.md, and in test names."""
    cited = []
    for name, text in texts(root, files):
        if name in (THIS, "docs/security.md"):
            continue
        for m in re.finditer(r"docs/security\.md", text):
            tail = text[m.end():m.end() + 240]
            # the citation ends at the end of its parenthesis, docstring, sentence or at the
            # next document named
            end = re.search(r"\)|\"\"\"|\*/|\.\s|:\s|docs/(?:design|kubernetes)\.md|\n\s*\n", tail)
            run = tail[:end.start()] if end else tail
            run = re.sub(r"§\s*" + SECTION + r"(?:\s+items?\s+[0-9, and]+)?", " ", run)
            cited += [(name, line_of(text, m.start()), i) for i in _expand(run)]
        if name.startswith("tests/"):
            for m in re.finditer(r"\b(?:def|void)\s+test_((?:[a-l][0-9]{2}_)+)", text):
                for i in re.findall(r"[a-l][0-9]{2}", m.group(1)):
                    cited.append((name, line_of(text, m.start()), i.upper()))
    return cited


def unknown_case_ids(root, files):
    cases = security_cases(root)
    return [f"{name}:{line}: case {i} is not in docs/security.md"
            for name, line, i in cited_case_ids(root, files) if i not in cases]


def case_table_problems(root):
    cases = security_cases(root)
    problems = [f"docs/security.md: case {i} is missing" for i in EXPECTED_CASES if i not in cases]
    for i, row in cases.items():
        if i not in EXPECTED_CASES:
            problems.append(f"docs/security.md: {i} is not a known case id")
        status = row.rsplit("|", 1)[-1].strip()
        if not re.match(r"(covered|partly\b|not covered yet)", status):
            problems.append(f"docs/security.md: case {i} has no status (covered, partly, "
                            f"not covered yet): {status!r}")
        if re.match(r"(covered|partly)", status) and not TEST_REF.search(row):
            problems.append(f"docs/security.md: case {i} is {status.split()[0]} but names no test")
    return problems


def _defines(text, path, function):
    if path.endswith(".py"):
        return re.search(r"^\s*def\s+" + re.escape(function) + r"\s*\(", text, re.M) is not None
    return re.search(r"^(?:static\s+)?(?:void|int)\s+\**" + re.escape(function) + r"\s*\(",
                     text, re.M) is not None


def missing_tests(root):
    text = read_text(root, "docs/security.md") or ""
    problems = []
    for m in TEST_REF.finditer(text):
        path, function = m.groups()
        source = read_text(root, path) if os.path.isfile(os.path.join(root, path)) else None
        if source is None:
            problems.append(f"docs/security.md:{line_of(text, m.start())}: {path} does not exist")
        elif not _defines(source, path, function):
            problems.append(f"docs/security.md:{line_of(text, m.start())}: {path} has no "
                            f"{function}")
    return problems


# ---------------------------------------------------------------- this repository

@pytest.fixture(scope="module")
def files():
    return tree_files(ROOT)


def test_the_documents_exist(files):
    for doc in DOCS:
        assert f"docs/{doc}.md" in files, f"docs/{doc}.md is not in the tree"
        assert doc_sections(ROOT)[doc], f"docs/{doc}.md has no numbered sections"


def test_no_citation_of_documents_outside_the_repository(files):
    problems = forbidden_citations(ROOT, files)
    assert not problems, "\n".join(problems)


def test_every_section_reference_resolves(files):
    problems = section_references(ROOT, files)
    assert not problems, "\n".join(problems)


def test_every_cited_case_id_is_a_case(files):
    assert len(cited_case_ids(ROOT, files)) > 50   # the parser still finds the citations
    problems = unknown_case_ids(ROOT, files)
    assert not problems, "\n".join(problems)


def test_case_table_is_complete():
    problems = case_table_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_every_named_test_exists():
    assert len(TEST_REF.findall(read_text(ROOT, "docs/security.md"))) > 100
    problems = missing_tests(ROOT)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- each check can fail

GOOD_SECURITY = """# s
## 5. Cases
| id | what | tests | status |
|---|---|---|---|
""" + "".join(f"| {i} | x | `tests/t.py::test_{i.lower()}_x` | covered |\n" for i in EXPECTED_CASES)

GOOD_TESTS = "".join(f"def test_{i.lower()}_x():\n    pass\n" for i in EXPECTED_CASES)


def make_tree(tmp_path, extra=None, security=GOOD_SECURITY, tests=GOOD_TESTS):
    root = tmp_path / "tree"
    (root / "docs").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "docs" / "design.md").write_text("# d\n## 1. One\n### 1.1 Sub\n## 2. Two\nsee §1.1\n")
    (root / "docs" / "kubernetes.md").write_text("# k\n## 1. One\n### 1.4 Errors\n")
    (root / "docs" / "security.md").write_text(security)
    (root / "tests" / "t.py").write_text(tests)
    (root / "code.c").write_text("/* docs/design.md §2, docs/kubernetes.md §1.4 (docs/security.md A01-A03) */\n")
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return str(root), tree_files(str(root))


def test_a_clean_tree_passes(tmp_path):
    root, files = make_tree(tmp_path)
    assert forbidden_citations(root, files) == []
    assert section_references(root, files) == []
    assert unknown_case_ids(root, files) == []
    assert case_table_problems(root) == []
    assert missing_tests(root) == []


@pytest.mark.parametrize("text", [
    "see ../" + "shared/PRODUCT.md", "PRODUCT" + " §7", "(SECURITY" + ".md L01)",
    "SECURITY" + " B04", "k8s-api-" + "facts §2", "TESTING-" + "NOTES.md", "facts" + " §8",
])
def test_forbidden_citation_can_fail(tmp_path, text):
    root, files = make_tree(tmp_path, {"bad.py": f"# {text}\n"})
    assert [p for p in forbidden_citations(root, files) if p.startswith("bad.py:1:")]


@pytest.mark.parametrize("text", ["docs/design.md §3", "`docs/design.md` §1.2",
                                  "docs/kubernetes.md §1.4, §9", "docs/design.md §1–§3"])
def test_missing_section_can_fail(tmp_path, text):
    root, files = make_tree(tmp_path, {"bad.c": f"/* {text} */\n"})
    assert [p for p in section_references(root, files) if p.startswith("bad.c:1:")]


def test_missing_section_in_a_doc_itself_can_fail(tmp_path):
    root, files = make_tree(tmp_path)
    with open(os.path.join(root, "docs", "design.md"), "a") as f:
        f.write("as §4 says\n")
    assert [p for p in section_references(root, files)
            if p.startswith("docs/design.md:") and "section 4" in p]


@pytest.mark.parametrize("text", ['"""docs/security.md K01: x"""', "(docs/security.md A14-A16)",
                                  "# docs/security.md D12/G07", "def test_k01_something():"])
def test_unknown_case_id_can_fail(tmp_path, text):
    root, files = make_tree(tmp_path, {"tests/bad.py": text + "\n"})
    assert [p for p in unknown_case_ids(root, files) if p.startswith("tests/bad.py:1:")]


def test_missing_case_can_fail(tmp_path):
    root, _ = make_tree(tmp_path, security=GOOD_SECURITY.replace("| E03 |", "| X03 |"))
    problems = case_table_problems(root)
    assert "docs/security.md: case E03 is missing" in problems


def test_case_without_status_or_test_can_fail(tmp_path):
    bad = GOOD_SECURITY.replace("`tests/t.py::test_c06_x` | covered", "— | covered")
    bad = bad.replace("`tests/t.py::test_c08_x` | covered", "`tests/t.py::test_c08_x` | fine")
    problems = case_table_problems(root=make_tree(tmp_path, security=bad)[0])
    assert "docs/security.md: case C06 is covered but names no test" in problems
    assert any(p.startswith("docs/security.md: case C08 has no status") for p in problems)


@pytest.mark.parametrize("old,new", [("test_d15_x():", "test_d15_renamed():"),
                                     ("def test_j02_x", "# def test_j02_x")])
def test_missing_named_test_can_fail(tmp_path, old, new):
    root, _ = make_tree(tmp_path, tests=GOOD_TESTS.replace(old, new))
    assert [p for p in missing_tests(root) if p.endswith(old.split("(")[0].split()[-1])]


def test_missing_test_file_can_fail(tmp_path):
    root, _ = make_tree(tmp_path, security=GOOD_SECURITY.replace("tests/t.py::test_a01_x",
                                                                 "tests/gone.py::test_a01_x"))
    assert any("tests/gone.py does not exist" in p for p in missing_tests(root))
