"""Build the shipped procedure catalogue (vn-tthc.json) from the published procedure sheets.

Usage: python civicore/catalogue/data/build_vn_tthc.py SOURCE_DIR [--out PATH]

SOURCE_DIR holds one JSON file per procedure, extracted from the procedure sheets published on
Vietnam's National Public Service Portal (dichvucong.gov.vn). The output keeps only what the
Procedure model stores, so the product ships without the (much larger) source files. Run it
again whenever the source is refreshed; the output is sorted and stable, so diffs stay small.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parent / "vn-tthc.json"
SOURCE = "Cổng Dịch vụ công quốc gia (dichvucong.gov.vn)"
# The portal writes these where a field was left empty; showing them would only add noise.
EMPTY = {"", "không có thông tin", "không"}


def clean(value: Any) -> str:
    text = str(value or "")
    text = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines())
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return "" if text.lower() in EMPTY else text


def per_channel(rows: list[dict[str, Any]], key: str) -> str:
    """One value when every channel agrees, otherwise "channel: value" lines."""
    pairs = [(clean(row.get("hinh_thuc")), clean(row.get(key))) for row in rows]
    pairs = [(channel, value) for channel, value in pairs if value]
    distinct = list(dict.fromkeys(value for _, value in pairs))
    if len(distinct) <= 1:
        return distinct[0] if distinct else ""
    return "\n".join(f"{channel}: {value}" if channel else value for channel, value in pairs)


def convert(raw: dict[str, Any]) -> dict[str, Any]:
    meta = raw.get("metadata") or {}
    content = raw.get("content") or {}
    tables = raw.get("tables") or {}
    channels = tables.get("hinh_thuc_nop") or []
    decision = clean(meta.get("số_quyết_định"))
    return {
        "code": clean(meta.get("mã_thủ_tục") or raw.get("thu_tuc_id")),
        "name_vi": clean(meta.get("tên_thủ_tục")),
        "level": clean(meta.get("cấp_thực_hiện")),
        "field": clean(meta.get("lĩnh_vực")),
        "agency_name": clean(content.get("cơ_quan_thực_hiện")),
        "processing_time": per_channel(channels, "thoi_han_giai_quyet"),
        "fee_text": per_channel(channels, "phi_le_phi")
        .replace("Phí : ", "Phí: ")
        .replace("Lệ phí : ", "Lệ phí: "),
        "documents": [
            {"name": clean(doc.get("ten_giay_to")).lstrip("-+• ").strip(), "note": clean(doc.get("ghi_chu"))}
            for doc in tables.get("thanh_phan_ho_so") or []
            if clean(doc.get("ten_giay_to"))
        ],
        "legal_basis": [
            {"number": clean(law.get("so_ky_hieu")), "title": clean(law.get("trich_yeu"))}
            for law in tables.get("can_cu_phap_ly") or []
            if clean(law.get("trich_yeu")) or clean(law.get("so_ky_hieu"))
        ],
        "result": clean(content.get("kết_quả_thực_hiện")),
        "audience": clean(content.get("đối_tượng_thực_hiện")),
        "eligibility": clean(content.get("yêu_cầu_điều_kiện_thực_hiện")),
        "source": f"{SOURCE}, {decision}" if decision else SOURCE,
    }


def build(source_dir: Path) -> dict[str, Any]:
    procedures = []
    for path in sorted(source_dir.glob("*.json")):
        record = convert(json.loads(path.read_text(encoding="utf-8")))
        if not record["code"] or not record["name_vi"]:
            raise SystemExit(f"{path.name}: no procedure code or name")
        procedures.append(record)
    procedures.sort(key=lambda p: p["code"])
    return {
        "source": SOURCE + ", published procedure sheets",
        "terms": "Public government information published on Vietnam's National Public Service Portal; "
        "no licence stated; used with attribution.",
        "procedures": procedures,
    }


def dumps(data: dict[str, Any]) -> str:
    """Compact JSON with one procedure a line, so a refreshed source gives a readable diff."""
    head = {key: value for key, value in data.items() if key != "procedures"}
    lines = [json.dumps(p, ensure_ascii=False, separators=(",", ":")) for p in data["procedures"]]
    opening = json.dumps(head, ensure_ascii=False)[:-1] + ', "procedures": [\n'
    return opening + ",\n".join(lines) + "\n]}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source_dir", type=Path, help="folder with one JSON file per procedure")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.source_dir.is_dir():
        parser.error(f"{args.source_dir} is not a folder")
    data = build(args.source_dir)
    args.out.write_text(dumps(data), encoding="utf-8")
    print(f"Wrote {len(data['procedures'])} procedures to {args.out.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
