import numpy as np
import pandas as pd
import pytest

from mujun_geo import creditcode


@pytest.mark.parametrize("code", ["91310110666007217T", "91310115591693856A"])
def test_published_valid_codes(code):
    # test vectors from hutool's CreditCodeUtilTest (DOMAIN.md §6.3)
    assert creditcode.is_valid(code)


def test_check_character_by_hand():
    # 9 1 3 1 0 1 1 0 6 6 6 0 0 7 2 1 7 with weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28:
    # 9+3+27+27+0+26+16+0+120+174+150+0+0+168+20+30+196 = 966; 966 mod 31 = 5; 31-5 = 26 -> 'T'
    assert creditcode.check_character("91310110666007217") == "T"


def test_every_single_character_change_is_caught():
    code = "91310110666007217T"
    for pos in range(18):
        for ch in creditcode.ALPHABET:
            if ch == code[pos]:
                continue
            changed = code[:pos] + ch + code[pos + 1 :]
            if pos in range(2, 8) and not ch.isdigit():
                continue
            assert not creditcode.is_valid(changed), changed


def test_validate_series_statuses_and_index():
    s = pd.Series(
        ["91310110666007217t ", "91310110666007217A", "1234", None, ""], index=[5, 6, 7, 8, 9]
    )
    out = creditcode.validate_series(s)
    assert out.index.tolist() == [5, 6, 7, 8, 9]
    assert out["status"].tolist() == ["ok", "bad_checksum", "bad_format", "missing", "missing"]
    assert out["code"].iloc[0] == "91310110666007217T"


def test_make_credit_code_is_valid_and_unique():
    codes = {creditcode.make_credit_code("330481", i) for i in range(500)}
    assert len(codes) == 500
    assert all(creditcode.is_valid(c) for c in codes)


def _status_by_hand(code):
    if code is None or not str(code).strip():
        return "missing"
    code = str(code).strip().upper()
    if not creditcode._FORMAT.match(code):
        return "bad_format"
    return "ok" if creditcode.is_valid(code) else "bad_checksum"


def test_validate_series_equals_is_valid_code_by_code():
    rng = np.random.default_rng(5)
    good = [creditcode.make_credit_code("330481", int(i)) for i in rng.integers(0, 10**9, 3000)]
    alphabet = np.array(list(creditcode.ALPHABET))
    noisy = [c[:17] + str(rng.choice(alphabet)) for c in good[:1000]]  # check char at random
    other = ["91310110666007217t ", " 91310110666007217T", "9131011066600721７T", "X" * 18,
             "91310110666007217", "913101106660072170T", None, "", "  ", "9131O110666007217T",
             "91ABCDEF666007217T", "９1310110666007217T"]  # fmt: skip
    codes = good + noisy + other
    for s in (
        pd.Series(codes, dtype=object),
        pd.Series(codes, dtype="str"),
        pd.concat([pd.Series(codes[:2000], dtype="str"), pd.Series(codes[2000:], dtype="str")]),
    ):
        out = creditcode.validate_series(s)
        assert out["status"].tolist() == [_status_by_hand(c) for c in codes]
        assert out["status"].dtype == object and out.index.equals(s.index)
