"""``dialer sales`` and ``dialer customers`` on a record holding one sale."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdf
import pytest

from dialer.cli import main
from dialer.sales.service import Sales
from dialer.store.db import Database
from tests.api.conftest import build_stack
from tests.sales.conftest import SELLER, call_in_wrap_up

SALE = {
    "product": "Heat pump HP-12",
    "price": "8999.50",
    "delivery_terms": "Delivered within 30 days",
    "installation_terms": "Installed on the delivery day",
    "address": "3 chemin des Prés, 69001 Lyon",
}


async def _one_sale(url: str) -> None:
    db = Database(url)
    await db.connect()
    await db.migrate()
    try:
        async for stack in build_stack(db):
            stack.desk.sales = Sales(db, SELLER)
            attempt_id, me = await call_in_wrap_up(stack)
            body = {"code": "sale", "identity": {"last_name": "Martin"}, "sale": SALE}
            reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json=body, headers=me)
            assert reply.status_code == 200, reply.text
    finally:
        await db.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refusing an option
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_sales_and_customers_commands(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_one_sale(database_url))
    config = tmp_path / "dialer.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        f'[seller]\nname = "{SELLER.name}"\naddress = "{SELLER.address}"\n',
        encoding="utf-8",
    )
    common = ("--config", str(config))
    code, out, _ = run(capsys, "sales", "list", *common)
    assert code == 0 and "Heat pump HP-12" in out and "after delivery" in out

    code, _, err = run(capsys, "sales", "delivered", "1", "2000-01-31", *common)
    assert code == 1 and "before the contract" in err
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    code, out, _ = run(capsys, "sales", "delivered", "1", today.isoformat(), *common)
    assert code == 0 and f"until {today + timedelta(days=14)}" in out
    code, _, err = run(capsys, "sales", "withdraw", "1", "--channel", "pigeon", *common)
    assert code == 1 and "use one of: phone, email, post" in err
    code, out, _ = run(capsys, "sales", "withdraw", "1", "--channel", "post", *common)
    assert code == 0 and "withdrawn" in out and "no penalty" in out
    code, out, _ = run(capsys, "sales", "list", *common)
    assert "Heat pump" not in out  # withdrawn: no longer in a withdrawal period

    pdf = tmp_path / "c.pdf"
    code, _, _ = run(capsys, "sales", "confirmation", "1", "--output", str(pdf), *common)
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert code == 0 and "3 chemin des Prés" in text

    code, out, _ = run(capsys, "customers", "search", "martin", *common)
    assert code == 0 and "Martin" in out and "+33612345678" not in out
    code, out, _ = run(capsys, "customers", "export", "1", *common)
    assert code == 0 and json.loads(out)["customer"]["last_name"] == "Martin"
    code, _, err = run(capsys, "customers", "erase", "1", *common)
    assert code == 1 and "--yes" in err
    code, out, _ = run(capsys, "customers", "erase", "1", "--yes", *common)
    assert code == 0 and "erased" in out
    code, _, err = run(capsys, "customers", "search", "martin", *common)
    assert "no customer record matches" in err
