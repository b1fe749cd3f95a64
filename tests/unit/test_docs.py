"""The documentation holds: every relative link resolves, and every quoted `etl` command exists.

Checked pages: README.md, docs/*.md and bench/README.md. A relative link must name an existing
file, and its ``#anchor``, when it points into a Markdown page, a heading of that page (GitHub's
slugs). An ``etl ...`` command quoted in a code span or in a shell code block must name a command
path the app has (``etl db migrate``, ``etl cleanup new-reports``; ``a|b`` quotes each of a and
b), and every option quoted with it must be one of that command's options. The commands come
from the app itself (`typer.main.get_command`), so a renamed option breaks the docs here, not in
an operator's hands.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from etl.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console"}
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SHELL_OPERATORS = {"&&", "||", "|", ";", "&", "(", ")", "$(", "`"}


@dataclass(frozen=True)
class Page:
    """A Markdown page split into prose (code blocks blanked out) and its fenced code blocks."""

    path: Path
    prose: str
    blocks: tuple[tuple[str, str], ...]  # (language, body)


def read_page(path: Path) -> Page:
    prose: list[str] = []
    blocks: list[tuple[str, str]] = []
    fence: str | None = None
    language = ""
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence, language, body = match["fence"], match["info"].strip().split(" ")[0], []
            prose.append("")
        elif (
            fence is not None
            and line.strip().startswith(fence[0] * len(fence))
            and (line.strip().strip(fence[0]) == "")
        ):
            blocks.append((language.lower(), "\n".join(body)))
            fence = None
            prose.append("")
        elif fence is not None:
            body.append(line)
            prose.append("")
        else:
            prose.append(line)
    return Page(path, "\n".join(prose), tuple(blocks))


def code_spans(text: str) -> Iterator[str]:
    """The content of every code span in prose, on one line (GitHub's table pipes unescaped)."""
    for paragraph in re.split(r"\n\s*\n", text):
        for match in _CODE_SPAN.finditer(paragraph):
            yield " ".join(match.group(2).replace("\\|", "|").split())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline markup dropped, lower case, punctuation removed,
    spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page: Page) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in page.prose.splitlines():
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_targets(page: Page) -> list[str]:
    prose = _CODE_SPAN.sub("", page.prose)
    targets = [m.group(1) for m in _INLINE_LINK.finditer(prose)]
    targets += [m.group(1) for m in _REFERENCE_LINK.finditer(prose)]
    return targets


def broken_links(path: Path) -> list[str]:
    """Every relative link of the page that does not resolve, with the reason."""
    page = read_page(path)
    problems = []
    for target in link_targets(page):
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(read_page(resolved)):
            problems.append(f"{target}: no heading '#{anchor}' in {resolved.name}")
    return problems


def _options(command: Any) -> dict[str, bool]:
    """Each option name of a click command -> whether it takes a value."""
    names: dict[str, bool] = {"--help": False}
    for param in command.params:
        if param.param_type_name == "option":
            for name in (*param.opts, *param.secondary_opts):
                names[name] = not (param.is_flag or param.count)
    return names


def command_problems(quoted: str) -> list[str]:
    """What is wrong with a quoted ``etl`` command line, split at white space.

    Words that are not options name the command path while it reaches groups; ``a|b`` names
    alternatives, each checked. Every ``-x``/``--xy`` word must be an option of every command
    reached (the word after an option that takes a value is that value); a word after a leaf
    command that is not an option is a value or an argument.
    """
    root = typer.main.get_command(app)
    commands: list[tuple[str, Any]] = [("etl", root)]
    problems: list[str] = []
    takes_value = False
    for raw in quoted.split()[1:]:
        word = raw.strip("[]{}.,")
        if not word or takes_value:
            takes_value = False
            continue
        if re.match(r"^--?[A-Za-z]", word):
            name = word.split("=", 1)[0]
            takes_value = False
            for path, command in commands:
                known = _options(command)
                if name not in known:
                    problems.append(f"{path}: no option {name}")
                elif known[name] and "=" not in word:
                    takes_value = True
            continue
        if all(getattr(command, "commands", None) for _, command in commands):
            reached = []
            for path, group in commands:
                for alternative in word.split("|"):
                    if alternative in group.commands:
                        reached.append((f"{path} {alternative}", group.commands[alternative]))
                    else:
                        problems.append(f"{path}: no command {alternative!r}")
            if not reached:
                break
            commands = reached
    return problems


def shell_commands(block: str) -> Iterator[list[str]]:
    """Each simple command of a shell code block, as words (comments and assignments gone)."""
    text = block.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars="();<>|&`")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote: not a line we can read as shell
            continue
        words: list[str] = []
        for token in [*tokens, ";"]:
            if token in _SHELL_OPERATORS or set(token) <= set("();<>|&`"):
                while words and (words[0] == "$" or re.match(r"^[A-Za-z_]\w*=", words[0])):
                    words.pop(0)
                if words:
                    yield words
                words = []
            else:
                words.append(token)


def quoted_commands(path: Path) -> list[str]:
    """Every ``etl ...`` command quoted in the page's code spans and shell code blocks."""
    page = read_page(path)
    found = [span for span in code_spans(page.prose) if re.match(r"^etl(\s|$)", span)]
    for language, body in page.blocks:
        if language in _SHELL_LANGUAGES:
            found += [shlex.join(words) for words in shell_commands(body) if words[0] == "etl"]
    return found


def wrong_commands(path: Path) -> list[str]:
    problems = []
    for quoted in quoted_commands(path):
        problems += [f"`{quoted}`: {p}" for p in command_problems(quoted)]
    return problems


# The pages themselves.


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_every_quoted_etl_command_and_option_exists(path: Path) -> None:
    assert wrong_commands(path) == []


def test_the_pages_quote_the_commands_an_operator_needs() -> None:
    quoted = {" ".join(q.split()[:3]) for page in PAGES for q in quoted_commands(page)}
    for command in ("etl run", "etl plan", "etl runs", "etl check", "etl config show"):
        assert any(q.startswith(command) for q in quoted), command
    assert "etl db migrate" in quoted


# The checker, on made-up input.


def test_a_made_up_command_is_reported() -> None:
    assert command_problems("etl db migrat") == ["etl db: no command 'migrat'"]
    assert command_problems("etl frobnicate --dsn X")[0] == "etl: no command 'frobnicate'"


def test_a_made_up_option_is_reported() -> None:
    assert command_problems("etl run --no-such-option") == ["etl run: no option --no-such-option"]
    assert command_problems("etl runs --limit=5 --lmit 5") == ["etl runs: no option --lmit"]


def test_an_option_of_a_sibling_command_is_reported() -> None:
    assert command_problems("etl cleanup new-reports --truncate") == [
        "etl cleanup new-reports: no option --truncate"
    ]
    assert command_problems("etl cleanup --dry-run") == ["etl cleanup: no option --dry-run"]


def test_alternatives_are_each_checked() -> None:
    spelled = "etl cleanup new-reports|reported|read-errors|rejections [--max-age '7 days']"
    assert command_problems(spelled) == []
    assert command_problems("etl cleanup new-reports|reported --truncate") == [
        "etl cleanup new-reports: no option --truncate"
    ]
    assert command_problems("etl db init|grow") == ["etl db: no command 'grow'"]


def test_groups_flags_and_values_are_not_mistaken_for_errors() -> None:
    assert command_problems("etl cleanup reported --truncate --yes") == []
    assert command_problems("etl --version") == []
    assert command_problems("etl config") == []
    assert command_problems("etl run --dry-run true") == []  # a value, not a command


def test_commands_are_found_in_spans_and_shell_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `etl plan --group g` first, then `etl runs\n--limit 3`; `etl_runs` is a table.\n\n"
        "```sh\nETL_LOG__LEVEL=DEBUG etl run --dry-run  # a comment: etl nonsense\n"
        'eval "$(dev/services.sh env)" && etl db migrate \\\n  --to latest | cat\n```\n\n'
        "```toml\n[x]\netl = 'run --nope'\n```\n"
    )
    assert quoted_commands(page) == [
        "etl plan --group g",
        "etl runs --limit 3",
        "etl run --dry-run",
        "etl db migrate --to latest",
    ]
    page.write_text("```sh\netl db migrat\n```\nand `etl run --from-ofset 3`\n")
    assert wrong_commands(page) == [
        "`etl run --from-ofset 3`: etl run: no option --from-ofset",
        "`etl db migrat`: etl db: no command 'migrat'",
    ]


def test_links_to_missing_files_and_headings_are_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text(
        "# Other\n\n## Exit codes\n\n## Exit codes\n\n## The `etl run` options!\n"
    )
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/other.md) [ok](docs/other.md#exit-codes) [ok](docs/other.md#exit-codes-1)\n"
        "[ok](docs/other.md#the-etl-run-options) [ok](#top) [ok](https://example.com/x.md)\n"
        "[missing](docs/gone.md) [bad anchor](docs/other.md#exit-code)\n\n# Top\n\n"
        "`[not a link](nowhere.md)`\n\n```\n[not a link](nowhere.md)\n```\n"
    )
    assert broken_links(page) == [
        "docs/gone.md: no such file",
        "docs/other.md#exit-code: no heading '#exit-code' in other.md",
    ]


def test_the_module_table_names_every_module_of_the_package() -> None:
    table = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(
        str(path.relative_to(ROOT / "etl"))
        for path in (ROOT / "etl").rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )
    missing = [m for m in modules if f"`{m}`" not in table]
    assert not missing, f"docs/architecture.md lacks a row for {missing}"
