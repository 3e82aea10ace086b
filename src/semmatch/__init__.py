"""semmatch: short-text semantic matching with two-tower and interaction models.

    >>> import semmatch
    >>> matcher = semmatch.load_model("runs/demo/best")
    >>> matcher.predict_proba([("明天几点起床", "明早几点叫我起床")])
"""

__version__ = "0.1.0"

from semmatch.matcher import Matcher, load_model  # noqa: E402

__all__ = ["Matcher", "load_model", "__version__"]
