"""The information emails an agent can promise: one template per entry of ``templates.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dialer.domain.dispositions import DispositionError

TEMPLATES_FILE = Path(__file__).with_name("templates.toml")
_FIELDS = ("label", "subject", "link", "body")


class TemplateError(DispositionError):
    """A template file that cannot be used, or a template name that is not in it."""


@dataclass(frozen=True, slots=True)
class InfoTemplate:
    name: str
    label: str
    subject: str
    link: str
    body: str

    def render(self, first_name: str | None, last_name: str | None) -> tuple[str, str]:
        """The subject and body for one customer."""
        values = {"first_name": first_name or "", "last_name": last_name or "", "link": self.link}
        body = self.body.format(**values).replace("Hello ,", "Hello,")
        return self.subject.format(**values), body


@cache
def load_templates(path: Path = TEMPLATES_FILE) -> dict[str, InfoTemplate]:
    """Every template of the file, by name; a malformed file names the entry and the field to fix."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read the information templates: {exc}") from None
    out: dict[str, InfoTemplate] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise TemplateError(
                f"{path}: {name!r} must be a table such as [{name}] with {', '.join(_FIELDS)}"
            )
        missing = [f for f in _FIELDS if not isinstance(entry.get(f), str)]
        if missing:
            raise TemplateError(f"{path}: [{name}] needs {', '.join(missing)} (text)")
        template = InfoTemplate(name, entry["label"], entry["subject"], entry["link"], entry["body"])
        try:
            template.render("A", "B")
        except (KeyError, IndexError, ValueError) as exc:
            raise TemplateError(
                f"{path}: [{name}] uses an unknown placeholder {exc}; use {{first_name}}, {{last_name}}, "
                "{link}"
            ) from None
        out[name] = template
    return out


def template(name: str, path: Path = TEMPLATES_FILE) -> InfoTemplate:
    templates = load_templates(path)
    if name not in templates:
        raise TemplateError(
            f"no information template {name!r}; choose among: {', '.join(sorted(templates)) or 'none'}"
        )
    return templates[name]
