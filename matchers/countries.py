"""Country code table: IVC distinguishing signs, ISO 3166 alpha-2 and alpha-3 -> alpha-2.

ISO codes come from ``pycountry`` (the complete, maintained ISO 3166-1 list);
the international vehicle registration codes (IVC, the oval sticker) are not in
ISO, so they are listed here, covering every European country and the usual
visitors. No IVC code here collides with the ISO code of another country.
"""

from __future__ import annotations

import pycountry

#: IVC distinguishing sign -> ISO 3166-1 alpha-2.
IVC: dict[str, str] = {
    # Europe
    "A": "AT",
    "AL": "AL",
    "AND": "AD",
    "B": "BE",
    "BG": "BG",
    "BIH": "BA",
    "BY": "BY",
    "CH": "CH",
    "CY": "CY",
    "CZ": "CZ",
    "D": "DE",
    "DK": "DK",
    "E": "ES",
    "EST": "EE",
    "F": "FR",
    "FIN": "FI",
    "FL": "LI",
    "FO": "FO",
    "GB": "GB",
    "UK": "GB",
    "GBA": "GG",
    "GBG": "GG",
    "GBJ": "JE",
    "GBM": "IM",
    "GBZ": "GI",
    "GR": "GR",
    "EL": "GR",
    "H": "HU",
    "HR": "HR",
    "I": "IT",
    "IRL": "IE",
    "IS": "IS",
    "L": "LU",
    "LT": "LT",
    "LV": "LV",
    "M": "MT",
    "MC": "MC",
    "MD": "MD",
    "MK": "MK",
    "NMK": "MK",
    "MNE": "ME",
    "N": "NO",
    "NL": "NL",
    "P": "PT",
    "PL": "PL",
    "RO": "RO",
    "RKS": "XK",
    "RSM": "SM",
    "RUS": "RU",
    "S": "SE",
    "SK": "SK",
    "SLO": "SI",
    "SRB": "RS",
    "TR": "TR",
    "UA": "UA",
    "V": "VA",
    # Caucasus, Central Asia and the Mediterranean rim
    "AM": "AM",
    "AZ": "AZ",
    "GE": "GE",
    "KZ": "KZ",
    "MA": "MA",
    "TN": "TN",
    "DZ": "DZ",
    "IL": "IL",
    "RL": "LB",
    "SYR": "SY",
    "IR": "IR",
    "IRQ": "IQ",
    # Further afield
    "CDN": "CA",
    "USA": "US",
    "AUS": "AU",
    "NZ": "NZ",
    "J": "JP",
    "ROK": "KR",
    "RC": "TW",
    "RA": "AR",
    "RCH": "CL",
    "BR": "BR",
    "MEX": "MX",
    "ZA": "ZA",
    "IND": "IN",
    "PK": "PK",
    "T": "TH",
}

#: Codes ISO 3166-1 does not assign but that vehicles carry (Kosovo).
EXTRA: dict[str, str] = {"XK": "XK", "XKX": "XK"}


def _build() -> dict[str, str]:
    table: dict[str, str] = {}
    for c in pycountry.countries:
        table[c.alpha_2] = c.alpha_2
        table[c.alpha_3] = c.alpha_2
    table.update(EXTRA)
    for code, iso2 in IVC.items():
        table.setdefault(code, iso2)
        if table[code] != iso2:  # pragma: no cover - guarded by a unit test
            msg = f"IVC code {code!r} collides with ISO code of {table[code]!r}"
            raise AssertionError(msg)
    return table


#: Every accepted code form (upper case) -> ISO 3166-1 alpha-2.
CODES: dict[str, str] = _build()
