"""Numbers the operator types on the command line (``dialer dnc add|remove|check``): national numbers
with --country, and errors that echo what was typed (it is the operator's own input)."""

from __future__ import annotations

import pytest

from dialer.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in err, err
    return code, out, err


def test_dnc_takes_a_national_number_with_its_country(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate", "--db", database_url)
    code, _, err = run(capsys, "dnc", "add", "0612345679", "--db", database_url)
    assert code == 1
    assert "'0612345679' is a national number: give its country with --country (e.g. --country FR)" in err
    code, out, _ = run(capsys, "dnc", "add", "06 12 34 56 79", "--country", "FR", "--db", database_url)
    assert code == 0 and out == "+33******679 added to the global do-not-call list\n"
    code, out, _ = run(capsys, "dnc", "check", "+33612345679", "--db", database_url)
    assert code == 3 and out.startswith("+33******679: global")  # the same number, however written
    code, out, _ = run(capsys, "dnc", "remove", "0612345679", "--country", "fr", "--db", database_url)
    assert code == 0 and out == "+33******679 removed from the global do-not-call list\n"

    code, _, err = run(capsys, "dnc", "add", "0612345679 ext 5", "--country", "FR", "--db", database_url)
    assert code == 1 and "'0612345679 ext 5' is not a phone number: 'e' is not a digit or separator" in err
    code, _, err = run(capsys, "dnc", "check", "061234", "--country", "FR", "--db", database_url)
    assert code == 1 and "'061234' is not a valid phone number for FR; check the digits" in err
    code, _, err = run(capsys, "dnc", "add", "0612345679", "--country", "XX", "--db", database_url)
    assert code == 1 and "--country 'XX' is not an ISO 3166 country code" in err
