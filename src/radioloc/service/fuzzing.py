"""Fuzzing the service with schemathesis: requests generated from its own OpenAPI document, each operation in
schemathesis' positive and negative modes, half of them with a valid admin or client key so they reach past the
key check. Every response must be below 500, and every 4xx must be Google's error envelope.

Used by the test suite (a few hundred requests) and ``benchmarks/service_fuzz.py`` (thousands). schemathesis
is a test dependency (``pip install -e '.[test]'``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FuzzReport:
    requests: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_operation: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    unsatisfiable: list[str] = field(default_factory=list)  # operations without invalid inputs to generate (no parameters)

    def to_dict(self) -> dict:
        return {"requests": self.requests, "server_errors": sum(v for k, v in self.by_status.items() if k >= 500),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())}, "operations": len(self.by_operation),
                "failures": self.failures[:20], "no_negative_cases": self.unsatisfiable}  # fmt: skip


def envelope_problem(status: int, body) -> str | None:
    """Why a 4xx/5xx body is not Google's envelope, or None when it is."""
    try:
        error = body["error"]
        first = error["errors"][0]
        if error["code"] != status or not isinstance(error["message"], str) or not first["reason"] or not first["domain"]:
            return f"envelope fields wrong: {body}"
    except (KeyError, IndexError, TypeError):
        return f"not the error envelope: {str(body)[:200]}"
    return None


def fuzz(app, keys: list[str | None], examples_per_operation: int, seed: int = 0) -> FuzzReport:
    """Run schemathesis over every operation of ``app``'s OpenAPI document (see the module docstring)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report = FuzzReport()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=examples_per_operation, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode), key=st.sampled_from(keys))
            def run(case, key):
                if key is not None:
                    case.query = {**(case.query or {}), "key": key}
                response = case.call()
                report.requests += 1
                report.by_status[response.status_code] += 1
                report.by_operation[f"{operation.method.upper()} {operation.path}"] += 1  # noqa: B023 (run() is called in this iteration)
                if response.status_code >= 500:
                    report.failures.append(f"{response.status_code} {case.method} {case.formatted_path} {case.query} {str(case.body)[:200]}")
                elif response.status_code >= 400:
                    try:
                        body = response.json()
                    except ValueError:
                        body = response.text
                    problem = envelope_problem(response.status_code, body)
                    if problem:
                        report.failures.append(f"{response.status_code} {case.method} {case.formatted_path}: {problem}")

            try:
                run()
            except Unsatisfiable:
                report.unsatisfiable.append(f"{operation.method.upper()} {operation.path}")
            except Exception as exc:  # an unhealthy strategy (schemathesis cannot generate negative data for it): note it
                report.failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {type(exc).__name__}: {str(exc)[:200]}")
    return report
