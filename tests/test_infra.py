"""infra/: the deployment files, linted offline, plus what the linters do not check.

cfn-lint (AWS SAM template), kubernetes-validate --strict (manifests) and
hadolint (Dockerfile) run as subprocesses. They do not know EventBridge
Scheduler's expression syntax, Lambda's memory and time limits as they apply
to parameters, that one state DB needs reserved concurrency 1 and no retries,
that every job needs a schedule, or that a CronJob must not overlap itself;
the tests below pin those. Building the image needs a Docker engine, which CI
does not have: the Dockerfile is checked by hadolint and by parsing its stages.
"""

import calendar
import json
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

from jobs import lambda_handler
from shared.config import parse_config
from jobs import JOBS

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
TEMPLATE = INFRA / "aws" / "template.yaml"
MANIFESTS = sorted((INFRA / "k8s").glob("*.yaml"))
DOCKERFILE = INFRA / "Dockerfile"
UNIT = INFRA / "systemd" / "ssi-bot.service"
CRONTAB = INFRA / "crontab"

LAMBDA_MAX_MEMORY_MB = 10240
LAMBDA_MAX_TIMEOUT_S = 900
LAMBDA_MAX_EPHEMERAL_MB = 10240
# Fargate's valid CPU units -> memory MiB (AWS ECS developer guide, task size).
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}
# What EventBridge Scheduler substitutes for its context attributes (a real delivery's values).
SCHEDULER_CONTEXT = {
    "<aws.scheduler.schedule-arn>": "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/"
                                    "ssi-bot-shard-a-JobsFunctionOnline-1ABCDEF2GHIJ",
    "<aws.scheduler.scheduled-time>": "2025-06-01T12:00:00Z",
    "<aws.scheduler.execution-id>": "d32c5kddcf5bb8c3",
    "<aws.scheduler.attempt-number>": "1",
}


# --------------------------------------------------------------------------- helpers

def tool(name):
    """A linter installed by requirements-dev.txt, beside this Python or on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags: !Ref X -> {"Ref": X}, !Sub s -> {"Fn::Sub": s}."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources(template, *types):
    return {name: r for name, r in template["Resources"].items() if r["Type"] in types}


def value_range(template, value):
    """(lowest, highest) a property can take: a literal, or a parameter's bounds."""
    if isinstance(value, dict) and "Ref" in value:
        param = template["Parameters"][value["Ref"]]
        assert "MinValue" in param and "MaxValue" in param, f"parameter {value['Ref']} needs MinValue and MaxValue"
        assert param["MinValue"] <= param["Default"] <= param["MaxValue"]
        return param["MinValue"], param["MaxValue"]
    return value, value


def scheduler_input(text):
    """The event a schedule's Input becomes once Scheduler fills in its context attributes."""
    for placeholder, real in SCHEDULER_CONTEXT.items():
        text = text.replace(placeholder, real)
    return json.loads(text)


def lambda_schedules(template):
    """(name, properties) of every ScheduleV2 event of every SAM function."""
    found = []
    for fname, function in resources(template, "AWS::Serverless::Function").items():
        for ename, event in (function["Properties"].get("Events") or {}).items():
            if event["Type"] == "ScheduleV2":
                found.append((f"{fname}.{ename}", event["Properties"]))
    return found


def all_schedules(template):
    """(name, expression, flexible window, retry policy) of every schedule, SAM or plain."""
    found = [(name, p["ScheduleExpression"], p.get("FlexibleTimeWindow"), p.get("RetryPolicy"))
             for name, p in lambda_schedules(template)]
    for name, schedule in resources(template, "AWS::Scheduler::Schedule").items():
        p = schedule["Properties"]
        found.append((name, p["ScheduleExpression"], p.get("FlexibleTimeWindow"), p["Target"].get("RetryPolicy")))
    return found


# --------------------------------------------------------------------------- schedule expressions

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS_AWS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_DAYS_CRON = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


def _number(token, low, high, names):
    value = names.get(token.upper()) if token.upper() in names else (int(token) if token.isdigit() else None)
    return value is not None and low <= value <= high


def _field_ok(text, low, high, names=None, extra=""):
    """One cron field: lists of *, N, N-M, with /step; ``extra`` allows ? L W # (AWS only)."""
    names = names or {}
    if text == "?" and "?" in extra:
        return True
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        if "L" in extra and base == "L":
            continue
        if "W" in extra and re.fullmatch(r"(\d+|L)W", base):
            return _number(base[:-1], low, high, names) if base[0] != "L" else True
        if "#" in extra and "#" in base:
            day, _, nth = base.partition("#")
            if not (_number(day, low, high, names) and nth.isdigit() and 1 <= int(nth) <= 5):
                return False
            continue
        if "L" in extra and base.endswith("L") and len(base) > 1:
            base = base[:-1]
        first, _, last = base.partition("-")
        if not _number(first, low, high, names) or (last and not _number(last, low, high, names)):
            return False
    return True


def scheduler_expression_problem(expression):
    """Why ``expression`` is not a valid EventBridge Scheduler expression, or None.

    rate(N minute[s]|hour[s]|day[s]); cron(min hour day-of-month month day-of-week year),
    six fields, one of the two day fields '?'; at(yyyy-mm-ddThh:mm:ss).
    """
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2)
        if n < 1:
            return "a rate must be at least 1"
        if (n == 1) != (not unit.endswith("s")):
            return f"rate({n} {unit}): use the singular unit for 1 and the plural otherwise"
        return None
    if re.fullmatch(r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)", expression):
        return None
    cron = re.fullmatch(r"cron\((.*)\)", expression)
    if not cron:
        return "expected rate(...), cron(...) or at(...)"
    fields = cron.group(1).split()
    if len(fields) != 6:
        return f"cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        return "exactly one of day-of-month and day-of-week must be '?'"
    checks = [(minute, 0, 59, None, ""), (hour, 0, 23, None, ""), (dom, 1, 31, None, "?LW"),
              (month, 1, 12, _MONTHS, ""), (dow, 1, 7, _DAYS_AWS, "?L#"), (year, 1970, 2199, None, "")]
    for text, low, high, names, extra in checks:
        if not _field_ok(text, low, high, names, extra):
            return f"cron field {text!r} is not valid"
    return None


def unix_cron_problem(expression):
    """Why ``expression`` is not a valid 5-field cron line (crontab, Kubernetes), or None."""
    if expression in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot"):
        return None
    fields = expression.split()
    if len(fields) != 5:
        return f"need 5 fields, got {len(fields)}"
    minute, hour, dom, month, dow = fields
    checks = [(minute, 0, 59, None), (hour, 0, 23, None), (dom, 1, 31, None), (month, 1, 12, _MONTHS),
              (dow, 0, 7, _DAYS_CRON)]
    for text, low, high, names in checks:
        if not _field_ok(text, low, high, names):
            return f"field {text!r} is not valid"
    return None


def _expand(text, low, high):
    values = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        first, _, last = base.partition("-")
        start, end = (low, high) if base == "*" else (int(first), int(last or (high if step else first)))
        values.update(range(start, end + 1, int(step or 1)))
    return sorted(values)


def smallest_gap_seconds(expression):
    """The shortest time between two runs of a 5-field cron line (minute and hour fields)."""
    minute, hour = expression.split()[:2]
    times = [h * 60 + m for h in _expand(hour, 0, 23) for m in _expand(minute, 0, 59)]
    gaps = [b - a for a, b in zip(times, times[1:])] + [times[0] + 1440 - times[-1]]
    return 60 * min(gaps)


@pytest.mark.parametrize("expression", [
    "rate(1 minute)", "rate(5 minutes)", "rate(2 hours)", "rate(1 day)", "cron(17 4 * * ? *)",
    "cron(0/15 8-18 ? * MON-FRI *)", "cron(0 12 L * ? 2030)", "cron(0 9 ? * 2#1 *)", "at(2030-01-01T00:00:00)"])
def test_valid_scheduler_expressions_are_accepted(expression):
    assert scheduler_expression_problem(expression) is None


@pytest.mark.parametrize("expression", [
    "rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(1 second)", "cron(17 4 * * *)",
    "cron(17 4 * * * *)", "cron(17 4 1 * MON *)", "cron(61 4 * * ? *)", "cron(0 24 * * ? *)",
    "cron(0 4 * 13 ? *)", "*/5 * * * *", "rate(1 week)"])
def test_invalid_scheduler_expressions_are_refused(expression):
    assert scheduler_expression_problem(expression)


# --------------------------------------------------------------------------- the linters

def test_cfn_lint_passes_on_the_aws_template_without_warnings():
    done = subprocess.run([tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_manifests_pass_strict_validation():
    assert MANIFESTS, "no manifests in infra/k8s"
    done = subprocess.run([tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "did not validate" not in done.stdout + done.stderr


def test_hadolint_passes_on_the_dockerfile():
    done = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_would_catch_a_root_image_and_an_unpinned_install(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nUSER root\nRUN pip install torch\nCMD python run.py\n")
    done = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "DL3002" in done.stdout and "DL3013" in done.stdout


# --------------------------------------------------------------------------- AWS: what cfn-lint misses

def test_the_function_fits_lambda_limits_and_runs_one_invocation_at_a_time_without_retries():
    template = load_template()
    functions = resources(template, "AWS::Serverless::Function", "AWS::Lambda::Function")
    assert functions
    for name, function in functions.items():
        p = function["Properties"]
        low, high = value_range(template, p["MemorySize"])
        assert 128 <= low and high <= LAMBDA_MAX_MEMORY_MB, f"{name}: MemorySize {low}..{high} MB"
        low, high = value_range(template, p["Timeout"])
        assert low >= 1 and high <= LAMBDA_MAX_TIMEOUT_S, f"{name}: Timeout {low}..{high} s"
        assert 512 <= p["EphemeralStorage"]["Size"] <= LAMBDA_MAX_EPHEMERAL_MB
        assert p["PackageType"] == "Image"
        assert p["ReservedConcurrentExecutions"] == 1, f"{name}: the jobs of one DB must never overlap"
        assert p["EventInvokeConfig"]["MaximumRetryAttempts"] == 0, f"{name}: no automatic retries"
        assert 60 <= p["EventInvokeConfig"]["MaximumEventAgeInSeconds"] <= 21600


def test_the_function_entry_point_is_the_handler_in_this_repository():
    template = load_template()
    for function in resources(template, "AWS::Serverless::Function").values():
        image = function["Properties"]["ImageConfig"]
        assert image["EntryPoint"] == ["python", "-m", "awslambdaric"]
        module, _, attribute = image["Command"][0].rpartition(".")
        assert module == "jobs.lambda_handler" and callable(getattr(lambda_handler, attribute))
        assert image["WorkingDirectory"] == "/app"


def test_every_schedule_is_valid_has_no_flexible_window_and_never_retries():
    schedules = all_schedules(load_template())
    assert len(schedules) >= 4
    for name, expression, window, retry in schedules:
        assert scheduler_expression_problem(expression) is None, (name, expression,
                                                                  scheduler_expression_problem(expression))
        # YAML reads a bare OFF as false: it must be the string.
        assert window == {"Mode": "OFF"}, f"{name}: FlexibleTimeWindow {window!r}"
        assert retry and retry["MaximumRetryAttempts"] == 0, f"{name}: Scheduler must not retry"
        assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400


def test_every_job_has_a_schedule_and_every_scheduled_input_is_an_event_the_handler_accepts():
    scheduled = []
    for name, p in lambda_schedules(load_template()):
        event = scheduler_input(p["Input"])
        jobs = lambda_handler.event_jobs(event)
        assert jobs, name
        assert event["scheduled_time"] == SCHEDULER_CONTEXT["<aws.scheduler.scheduled-time>"]
        assert event["schedule_arn"].startswith("arn:aws:scheduler:")
        scheduled += jobs
    missing = set(JOBS) - {"sync"} - set(scheduled)      # the handler pushes after every job itself
    assert not missing, f"jobs without a schedule: {missing}"
    # the state-changing jobs in the order the data flows, never one schedule per stage of one item
    online = [lambda_handler.event_jobs(scheduler_input(p["Input"])) for _, p in lambda_schedules(load_template())]
    assert ["fetch", "decide", "generate", "post"] in online


def test_the_fargate_variant_is_a_valid_task_size_run_by_a_scheduler_that_never_retries():
    template = load_template()
    (task,) = resources(template, "AWS::ECS::TaskDefinition").values()
    p = task["Properties"]
    assert p["RequiresCompatibilities"] == ["FARGATE"] and p["NetworkMode"] == "awsvpc"
    assert int(p["Memory"]) in FARGATE_SIZES[int(p["Cpu"])], (p["Cpu"], p["Memory"])
    assert 21 <= p["EphemeralStorage"]["SizeInGiB"] <= 200
    (container,) = p["ContainerDefinitions"]
    assert container["Command"][:3] == ["python", "-m", "jobs.lambda_handler"]
    assert lambda_handler.event_jobs({"jobs": container["Command"][3:]})
    assert container["ReadonlyRootFilesystem"] is True
    assert container["StopTimeout"] <= 120
    (schedule,) = resources(template, "AWS::Scheduler::Schedule").values()
    ecs = schedule["Properties"]["Target"]["EcsParameters"]
    assert ecs["LaunchType"] == "FARGATE" and ecs["TaskCount"] == 1
    assert schedule["Properties"]["State"] == {"Ref": "FargateScheduleState"}
    assert template["Parameters"]["FargateScheduleState"]["Default"] == "DISABLED"


def test_lambda_and_fargate_schedules_cannot_both_drive_the_shard():
    rule = json.dumps(load_template()["Rules"])
    assert "LambdaSchedulesState" in rule and "FargateScheduleState" in rule and "Fn::Not" in rule


def test_the_state_bucket_is_versioned_private_kept_and_expires_old_snapshots():
    (bucket,) = resources(load_template(), "AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    p = bucket["Properties"]
    assert p["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = p["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and "NoncurrentVersionExpiration" in r for r in rules)
    assert not any("ExpirationInDays" in r for r in rules), "current snapshots must never expire"
    assert all(p["PublicAccessBlockConfiguration"].values())


def _allow_statements(template):
    for name, res in template["Resources"].items():
        documents = []
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(res["Properties"]["PolicyDocument"])
        if res["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in res["Properties"].get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == "Allow":
                    yield name, statement


def test_iam_is_least_privilege_the_shard_prefix_and_the_one_secret():
    template = load_template()
    statements = list(_allow_statements(template))
    assert statements
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), (name, actions)
        assert statement["Resource"] != "*", (name, actions)
        text = json.dumps(statement["Resource"])
        if actions == ["s3:ListBucket"]:
            assert "/" not in text.split(":::")[-1], f"{name}: ListBucket is granted on the bucket, nothing else"
        elif any(a.startswith("s3:") for a in actions):
            assert "${StatePrefix}" in text, f"{name}: object access outside the shard's prefix"
        if any(a in ("s3:PutObject", "s3:DeleteObject") for a in actions):
            assert "${StatePrefix}snapshots/*" in text, f"{name}: writes beyond snapshots/"
        if any(a.startswith("secretsmanager:") for a in actions):
            assert actions == ["secretsmanager:GetSecretValue"] and statement["Resource"] == {"Ref": "PrawSecretArn"}


def test_credentials_come_from_the_secret_never_from_the_template_or_the_image():
    template = load_template()
    (function,) = resources(template, "AWS::Serverless::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["SSI_BOT_PRAW_SECRET"] == {"Ref": "PrawSecretArn"}
    assert not any(k.lower().startswith("praw_") for k in variables), "PRAW env vars would hold a password"
    assert template["Parameters"]["PrawSecretArn"]["AllowedPattern"].startswith("^arn:aws")
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", ".dockerignore must be an allow-list: exclude everything first"
    assert "**/praw.ini" in ignore and "!praw.ini" not in ignore and "!ssi-bot.yaml" not in ignore


# --------------------------------------------------------------------------- Kubernetes: what the schema misses

def load_manifests():
    documents = []
    for path in MANIFESTS:
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def quantity(text):
    """A Kubernetes quantity in base units (cores, bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", str(text))
    assert match and match.group(2) in ("", *units), f"not a Kubernetes quantity: {text!r}"
    return float(match.group(1)) * units.get(match.group(2), 1)


def cronjobs():
    found = [d for d in load_manifests() if d["kind"] == "CronJob"]
    assert found
    return found


def test_cronjobs_never_overlap_and_drop_runs_that_could_not_start_in_time():
    for job in cronjobs():
        spec = job["spec"]
        assert unix_cron_problem(spec["schedule"]) is None, spec["schedule"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["startingDeadlineSeconds"] < smallest_gap_seconds(spec["schedule"])
        job_spec = spec["jobTemplate"]["spec"]
        assert job_spec["backoffLimit"] == 0, "no automatic retries"
        assert job_spec["template"]["spec"]["restartPolicy"] == "Never"
        assert job_spec["activeDeadlineSeconds"] > 0


def test_cronjob_pods_have_sane_resources_and_run_unprivileged():
    for job in cronjobs():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            for key in ("cpu", "memory"):
                assert quantity(requests[key]) <= quantity(limits[key]), (key, requests[key], limits[key])
            memory = quantity(limits["memory"])
            assert memory >= 1.5 * 2**30 and memory <= 16 * 2**30, "room for one GPT-2 124M, no more than a node"
            assert 0.25 <= quantity(limits["cpu"]) <= 16
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert "/tmp" in [m["mountPath"] for m in container["volumeMounts"]], "the handler's DB lives in /tmp"


def test_cronjobs_run_the_handler_with_the_config_and_the_praw_secret_side_by_side():
    documents = load_manifests()
    configmaps = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ConfigMap"}
    for job in cronjobs():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"][:3] == ["python", "-m", "jobs.lambda_handler"]
        assert lambda_handler.event_jobs({"jobs": container["command"][3:]})
        env = {e["name"]: e.get("value") for e in container["env"]}
        config_dir = os.path.dirname(env["SSI_BOT_CONFIG"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        (volume,) = [v for v in pod["volumes"] if mounts.get(v["name"]) == config_dir]
        sources = volume["projected"]["sources"]
        secret = [s["secret"] for s in sources if "secret" in s]
        assert secret and secret[0]["items"][0]["path"] == "praw.ini"
        (configmap,) = [s["configMap"] for s in sources if "configMap" in s]
        data = yaml.safe_load(configmaps[configmap["name"]]["data"]["ssi-bot.yaml"])
        config = parse_config(data)            # the shipped config is valid ssi-bot.yaml
        assert config.snapshots.bucket, "the state goes through S3"
        assert "password" not in configmaps[configmap["name"]]["data"]["ssi-bot.yaml"]


# --------------------------------------------------------------------------- Dockerfile: parsed stages

def dockerfile_stages():
    """[{name, base, instructions: [(KEYWORD, args)]}] with line continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"name": name, "base": parts[0], "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, args))
    return stages


def effective(stages, stage, keyword):
    """The last value of ``keyword`` in ``stage`` or the stages it is built FROM."""
    by_name = {s["name"]: s for s in stages}
    while stage:
        values = [args for k, args in stage["instructions"] if k == keyword]
        if values:
            return values[-1]
        stage = by_name.get(stage["base"])
    return None


def test_the_dockerfile_installs_cpu_torch_pinned_before_the_requirements():
    runs = [args for stage in dockerfile_stages() for k, args in stage["instructions"] if k == "RUN"]
    torch = [i for i, r in enumerate(runs) if "torch==2.13.0" in r and "download.pytorch.org/whl/cpu" in r]
    requirements = [i for i, r in enumerate(runs) if "-r /tmp/pip.req" in r]
    assert torch and requirements and torch[0] < requirements[0]
    assert not any(re.search(r"\btorch(?![=\w])", r) for r in runs if "torch==" not in r and "import torch" not in r)


def test_every_image_target_runs_as_a_non_root_user_with_an_entry_point():
    stages = dockerfile_stages()
    final = stages[-1]
    assert final["name"] == "runtime", "the default target (the last stage) runs run.py"
    for stage in stages:
        if stage["name"] in ("runtime", "lambda"):
            user = effective(stages, stage, "USER")
            assert user and user.split(":")[0] not in ("root", "0"), (stage["name"], user)
    assert json.loads(effective(stages, final, "CMD")) == ["python", "run.py"]
    (lambda_stage,) = [s for s in stages if s["name"] == "lambda"]
    assert json.loads(effective(stages, lambda_stage, "ENTRYPOINT")) == ["python", "-m", "awslambdaric"]
    assert json.loads(effective(stages, lambda_stage, "CMD")) == ["jobs.lambda_handler.handler"]


def test_the_bots_image_generates_with_openvino_from_models_converted_at_build_time_and_has_no_torch():
    stages = dockerfile_stages()
    by_name = {s["name"]: s for s in stages}

    def chain(stage):                       # the stage and the stages it is built FROM
        while stage:
            yield stage
            stage = by_name.get(stage["base"])

    for target in ("runtime", "lambda"):
        instructions = [(k, a) for stage in chain(by_name[target]) for k, a in stage["instructions"]]
        venvs = [a for k, a in instructions if k == "COPY" and "/opt/venv" in a]
        assert venvs == ["--from=bot-deps /opt/venv /opt/venv"], (target, venvs)
        assert "--from=convert /app/models/ models/" in [a for k, a in instructions if k == "COPY"]
        assert not [a for k, a in instructions if k == "RUN" and "pip install" in a]
    bot_deps = [a for k, a in by_name["bot-deps"]["instructions"] if k == "RUN" and "pip install" in a]
    assert bot_deps and all("-r /tmp/bot.req" in a and "torch==" not in a and "pip.req" not in a for a in bot_deps)
    assert any('! python -c "import torch"' in a for a in bot_deps)       # the build fails if torch crept in
    converting = [a for k, a in by_name["convert"]["instructions"] if k == "RUN"]
    assert converting == ["python -m shared.generation.openvino --all models int8"]
    assert by_name["convert"]["base"] == "deps"                          # the converter has torch
    assert by_name["offline"]["base"] == "deps"                          # finetune and export keep torch
    names = [re.split(r"[=<>\[ #]", line.strip())[0] for line in
             (ROOT / "infra" / "container" / "bot.req").read_text().splitlines() if line.strip()[:1].isalpha()]
    assert "openvino-genai" in names and not {"torch", "transformers", "simpletransformers"} & set(names)


def test_the_image_is_built_from_the_projects_own_files_and_leaves_credentials_out():
    stages = dockerfile_stages()
    copied = []
    for stage in stages:
        for keyword, args in stage["instructions"]:
            if keyword == "COPY" and "--from=" not in args:
                copied += [a for a in args.split()[:-1] if not a.startswith("--")]
    args = {a.split("=")[0]: a.split("=", 1)[1] for s in stages for k, a in s["instructions"]
            if k == "ARG" and "=" in a}
    for source in copied:
        source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
        if source.rstrip("/") == "models":
            continue                     # the operator's models/ (ignored by git); no-models stands in
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert (ROOT / "infra/container/no-models").is_dir()
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for source in copied:
        top = source.split("/")[0].replace("${MODELS}", "models")
        assert any(top == a.split("/")[0] for a in allowed), f"{source} is not let in by .dockerignore"


# --------------------------------------------------------------------------- systemd and crontab

def unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_systemd_unit_runs_run_py_as_its_own_user_and_stops_gracefully():
    s = unit_settings()
    assert s["User"] == ["ssi-bot"] and s["StateDirectory"] == ["ssi-bot"]
    assert s["ExecStart"][0].split()[1:3] == ["run.py", "--config"]
    assert s["KillSignal"] == ["SIGTERM"] and s["Restart"] == ["on-failure"]
    assert int(s["TimeoutStopSec"][0]) >= 120, "a generate batch must be able to finish"
    assert s["NoNewPrivileges"] == ["yes"] and s["ProtectSystem"] == ["strict"]
    assert "/var/lib/ssi-bot" in s["ReadWritePaths"][0].split()
    assert s["WorkingDirectory"] == ["/opt/ssi-bot"]


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: .ci/run installs it (apt-get install systemd)"
    shutil.copy(UNIT, tmp_path / UNIT.name)
    done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / UNIT.name)], capture_output=True,
                          text=True, timeout=60)
    # The paths under /opt/ssi-bot exist only on a machine where it is installed.
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "is not executable" not in line and "No such file" not in line]
    assert not problems, problems


def test_the_crontab_runs_every_job_at_a_valid_time_and_syncs_after_changing_the_state():
    lines = [line for line in CRONTAB.read_text().splitlines()
             if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line)]
    assert lines
    scheduled = []
    for line in lines:
        if line.startswith("@"):
            when, command = line.split(None, 1)
        else:
            fields = line.split()
            when, command = " ".join(fields[:5]), " ".join(fields[5:])
        assert unix_cron_problem(when) is None, (when, unix_cron_problem(when))
        jobs = re.findall(r"-m jobs\.(\w+)", command)
        for job in jobs:
            assert (ROOT / "jobs" / f"{job}.py").exists(), job
        changing = [j for j in jobs if j in JOBS and j != "sync"]
        if changing:
            assert jobs[-1] == "sync" and "sync push" in command, f"no push after {changing}: {line}"
        scheduled += jobs
    assert set(JOBS) <= set(scheduled), f"jobs crontab never runs: {set(JOBS) - set(scheduled)}"
