"""jaxcalc.validation: each check accepts its domain and names the argument otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxcalc import validation as V

BIG = 2**80  # integers are Python ints of any size


@pytest.mark.parametrize(
    ("check", "good", "bad", "what"),
    [
        (V.check_positive_int, [1, BIG], [0, -1, 1.0, True, "3", None], "a positive integer"),
        (V.check_nonnegative_int, [0, 7, BIG], [-1, 2.5, False, "0"], "a non-negative integer"),
        (V.check_finite, [0, -2.5, np.float32(3)], [math.inf, math.nan, "1", True, None],
         "a finite number"),
        (V.check_positive_finite, [1e-300, 3, np.float64(2)], [0, -1.0, math.inf, math.nan,
         "0.1", True, [1.0, 2.0]], "a positive finite number"),
        (V.check_nonnegative_finite, [0, 0.0, 5], [-1e-9, math.inf, math.nan, False],
         "a finite number >= 0"),
    ],
)  # fmt: skip
def test_checks_accept_their_domain_and_name_the_argument(check, good, bad, what):
    for value in good:
        assert check("arg", value) == value
    for value in bad:
        with pytest.raises(V.InputError, match=rf"^arg must be {what}, got "):
            check("arg", value)


def test_numbers_come_back_as_floats_and_ints_stay_ints():
    assert type(V.check_positive_finite("h", 2)) is float
    assert V.check_positive_int("n", BIG) == BIG and type(V.check_positive_int("n", 3)) is int


def test_in_range_half_open_and_closed():
    assert V.check_in_range("b1", 0.0, 0.0, 1.0) == 0.0
    with pytest.raises(V.InputError, match=r"^b1 must be a number in \[0, 1\), got 1.0$"):
        V.check_in_range("b1", 1.0, 0.0, 1.0)
    assert V.check_in_range("decay", 1.0, 0.0, 1.0, closed=True) == 1.0
    with pytest.raises(V.InputError, match=r"decay must be a number in \[0, 1\], got 1.5"):
        V.check_in_range("decay", 1.5, 0.0, 1.0, closed=True)
    with pytest.raises(V.InputError, match=r"must be a number in \[0, inf\), got inf"):
        V.check_in_range("weight_decay", math.inf, 0.0, math.inf)
    with pytest.raises(V.InputError, match="ema"):
        V.check_in_range("ema", "x", 0.0, 1.0)


def test_choice_and_callable():
    assert V.check_choice("loss", "mse", ("mse", "cross_entropy")) == "mse"
    with pytest.raises(V.InputError, match="unknown loss 'l1'; choose one of mse, cross_entropy"):
        V.check_choice("loss", "l1", ("mse", "cross_entropy"))
    with pytest.raises(V.InputTypeError, match="f must be callable, got str"):
        V.check_callable("f", "sin")
