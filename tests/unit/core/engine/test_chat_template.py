"""Chat templates are someone else's code: none of it may run outside Jinja's sandbox, run long,
or grow without bound, and ordinary templates must render exactly as Jinja renders them.

* code-execution payloads (the published CVE-2024-34359 "Llama Drama" pattern and the usual
  Jinja SSTI gadgets), each trying to create its own canary file: none is ever created;
* runaway templates (endless loops, output and string explosions, huge powers, recursion, and
  the single steps that multiply a size, some of which Jinja would run while compiling): each is
  stopped with TemplateError within 2.5 s, while the process's memory stays bounded;
* real templates (ChatML, the starter model's, Llama-3, Gemma, one with strftime_now and tojson,
  one with namespaces and slices) render exactly as plain Jinja renders them.
"""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path

import pytest
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from desktop.core.engine.chat_template import (
    CHATML_TEMPLATE,
    MAX_PROMPT_CHARS,
    MAX_TEMPLATE_CHARS,
    RENDER_SECONDS,
    ChatTemplate,
    TemplateError,
    TemplateRefusal,
    merge_system_into_first_user,
)
from desktop.core.models.gguf import read_gguf
from tests.helpers.pace import within, within_deadline
from tests.helpers.report import report

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! What's 2 + 2?"},
    {"role": "assistant", "content": "2 + 2 is 4."},
    {"role": "user", "content": "And <b>3 * 3</b> & more?"},
]
NO_SYSTEM = MESSAGES[1:]

# -- code execution ------------------------------------------------------------------------------
# Each payload tries to create the file CANARY (replaced by a path of its own) by running a
# shell command or opening a file through Python internals reached from the template.
TOUCH = "touch CANARY"
PAYLOADS: dict[str, str] = {
    "CVE-2024-34359 warnings-subclass gadget (Llama Drama)":
        "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}"
        "{{ x()._module.__builtins__['__import__']('os').system('" + TOUCH + "') }}{% endif %}{% endfor %}",
    "CVE-2024-34359 inside a real-looking template":
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
        "{{ x()._module.__builtins__['__import__']('os').system('" + TOUCH + "') }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    "Popen found among object's subclasses":
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
        "{{ c(['touch', 'CANARY']).wait() }}{% endif %}{% endfor %}",
    "self.__init__.__globals__":
        "{{ self.__init__.__globals__.__builtins__.__import__('os').system('" + TOUCH + "') }}",
    "self._TemplateReference__context":
        "{{ self._TemplateReference__context.environment.__class__.__init__.__globals__['os'].system('"
        + TOUCH + "') }}",
    "cycler.__init__.__globals__.os":
        "{{ cycler.__init__.__globals__.os.system('" + TOUCH + "') }}",
    "joiner.__init__.__globals__.os.popen":
        "{{ joiner.__init__.__globals__.os.popen('" + TOUCH + "').read() }}",
    "namespace.__init__.__globals__":
        "{{ namespace.__init__.__globals__.os.system('" + TOUCH + "') }}",
    "lipsum.__globals__":
        "{{ lipsum.__globals__['os'].popen('" + TOUCH + "').read() }}",
    "request.application.__globals__ (Flask gadget)":
        "{{ request.application.__globals__.__builtins__.__import__('os').system('" + TOUCH + "') }}",
    "config.__class__.__init__.__globals__ (Flask gadget)":
        "{{ config.__class__.__init__.__globals__['os'].system('" + TOUCH + "') }}",
    "''.__class__.__mro__[1].__subclasses__()[n].__init__.__globals__":
        "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__init__.__globals__ is defined "
        "and 'sys' in c.__init__.__globals__ %}{{ c.__init__.__globals__['sys'].modules['os'].system('"
        + TOUCH + "') }}{% endif %}{% endfor %}",
    "|attr('__class__') filter chain":
        "{% for c in ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() %}"
        "{% if 'warning' in c|attr('__name__') %}{{ (c()|attr('_module')|attr('__builtins__'))['__import__']"
        "('os').system('" + TOUCH + "') }}{% endif %}{% endfor %}",
    "|attr with escaped underscores":
        "{{ (()|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fbase\\x5f\\x5f')|attr("
        "'\\x5f\\x5fsubclasses\\x5f\\x5f')())[0]|attr('\\x5f\\x5finit\\x5f\\x5f')|attr("
        "'\\x5f\\x5fglobals\\x5f\\x5f') }}{{ cycler|attr('\\x5f\\x5finit\\x5f\\x5f')|attr("
        "'\\x5f\\x5fglobals\\x5f\\x5f')|attr('os') }}",
    '"%c"|format builds "__class__"':
        "{% set u = '%c%c'|format(95, 95) %}{% set cls = u ~ 'class' ~ u %}{% set g = u ~ 'globals' ~ u %}"
        "{% set i = u ~ 'init' ~ u %}{{ (cycler|attr(i)|attr(g))['os'].system('" + TOUCH + "') }}",
    '"%s" % ... builds attribute names':
        "{% set name = '%s%s%s' % ('__', 'globals', '__') %}"
        "{{ joiner.__init__[name]['os'].system('" + TOUCH + "') }}{{ (joiner.__init__|attr(name)).os }}",
    "str.format attribute access":
        "{{ '{0.__class__.__base__.__subclasses__}'.format(messages) }}"
        "{{ '{0.__init__.__globals__[os]}'.format(cycler) }}",
    "str.format_map attribute access":
        "{{ '{x.__init__.__globals__[os].system}'.format_map({'x': cycler}) }}",
    "format reached through getitem":
        "{{ ''['format']('{0.__class__.__mro__[1].__subclasses__}', messages) }}",
    "range.__class__":
        "{{ range.__class__.__base__.__subclasses__() }}{{ range.__self__.__import__('os').system('"
        + TOUCH + "') }}",
    "dict.__init__ / dict.__base__":
        "{{ dict.__init__.__globals__ }}{{ dict.__base__.__subclasses__() }}"
        "{{ dict.mro()[-1].__subclasses__() }}",
    "namespace() instance __init__":
        "{% set x = namespace() %}{{ x.__init__.__globals__.os.system('" + TOUCH + "') }}{{ x.__init__ }}",
    "messages.__class__":
        "{{ messages.__class__.__base__.__subclasses__() }}{{ messages[0].__class__.__mro__ }}",
    "raise_exception.__globals__":
        "{{ raise_exception.__globals__['__builtins__']['__import__']('os').system('" + TOUCH + "') }}",
    "strftime_now.__globals__ open()":
        "{{ strftime_now.__globals__['__builtins__']['open']('CANARY', 'w').write('pwned') }}",
    "raise_exception.__code__ / __closure__":
        "{{ raise_exception.__closure__ }}{{ raise_exception.__code__.co_consts }}",
    "tojson with objects":
        "{{ cycler|tojson }}{{ {'f': raise_exception}|tojson }}{{ messages|tojson }}",
    "''.__class__.__subclasses__()":
        "{{ ''.__class__.__subclasses__() }}{{ eos_token.__class__.__mro__[-1].__subclasses__() }}",
    "(0).__class__ and bool gadgets":
        "{{ (0).__class__.__base__.__subclasses__() }}{{ true.__class__.__mro__ }}",
    "[].pop (mutation in the immutable sandbox)":
        "{% set l = [1, 2] %}{{ l.pop() }}{{ messages.pop() }}",
    "messages.append":
        "{% set _ = messages.append({'role': 'user', 'content': '" + TOUCH + "'}) %}{{ messages|length }}",
    "dict mutation: update / clear / setdefault":
        "{% set _ = messages[0].update({'role': 'CANARY'}) %}{% set _ = messages[0].clear() %}"
        "{{ messages[0].setdefault('x', 1) }}",
    "loop object __globals__":
        "{% for m in messages %}{{ loop.__init__.__globals__['os'].system('" + TOUCH + "') }}{% endfor %}",
    "macro internals":
        "{% macro m() %}x{% endmacro %}{{ m._func.__globals__['environment'] }}{{ m.__call__.__globals__ }}"
        "{{ m._environment.__class__.__init__.__globals__['os'].system('" + TOUCH + "') }}",
    "caller internals":
        "{% macro m() %}{{ caller._func.__globals__ }}{{ caller.__class__ }}{% endmacro %}"
        "{% call m() %}x{% endcall %}",
    "bound method __self__ / __func__":
        "{{ cycler.reset.__func__.__globals__ }}{{ ''.join.__self__.__class__ }}{{ bos_token.encode.__self__ }}",
    "__getattribute__ / getattr by name":
        "{{ ''.__getattribute__('__class__') }}{{ messages|map(attribute='__class__')|list }}"
        "{{ messages|sort(attribute='__class__.__init__.__globals__') }}",
    "private Namespace attributes":
        "{% set ns = namespace(a=1) %}{{ ns._Namespace__attrs }}{{ ns.__dict__ }}",
    "import / include / extends":
        "{% import 'os' as os %}{{ os.system('" + TOUCH + "') }}{% include 'CANARY' %}",
    "__reduce_ex__ / __subclasshook__":
        "{{ ().__reduce_ex__(2) }}{{ messages.__reduce__() }}{{ ().__subclasshook__ }}",
}


def _render_payload(source: str) -> str | None:
    template = ChatTemplate(source, eos_token="<|im_end|>", bos_token="<s>")
    return template.render([dict(m) for m in MESSAGES]).prompt


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_code_execution_payload_is_inert(name: str, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    source = PAYLOADS[name].replace("CANARY", str(canary))
    assert str(canary) in source or "CANARY" not in PAYLOADS[name]
    messages_before = [dict(m) for m in MESSAGES]
    try:
        output = _render_payload(source)
    except TemplateError as exc:
        output = None
        assert str(exc)  # says what failed
    assert not canary.exists(), f"{name}: the template ran code outside the sandbox"
    assert list(tmp_path.iterdir()) == []
    assert messages_before == MESSAGES  # nothing mutated
    if output is not None:  # rendered harmlessly: no internals leaked into the prompt
        for leak in ("<class", "<module", "<function", "<built-in", "__builtins__", "<subprocess"):
            assert leak not in output, (name, output[:300])


def test_payload_count_and_the_cve_pattern_is_among_them() -> None:
    assert len(PAYLOADS) >= 20
    cve = PAYLOADS["CVE-2024-34359 warnings-subclass gadget (Llama Drama)"]
    assert "().__class__.__base__.__subclasses__()" in cve and "_module.__builtins__" in cve


def test_the_cve_gadget_works_outside_the_sandbox(tmp_path: Path) -> None:
    """Control: the payloads' Python really works outside the sandbox, so an inert result means
    the sandbox stopped it (not that the payload was broken)."""
    canary = tmp_path / "canary"
    import warnings

    gadget = next(x for x in ().__class__.__base__.__subclasses__() if "warning" in x.__name__)
    assert gadget is warnings.catch_warnings
    gadget()._module.__builtins__["__import__"]("os").system(f"touch {canary}")
    assert canary.exists()


# -- runaway templates ----------------------------------------------------------------------------
BIG = "{% set big = 'x' * 7000000 %}"
RUNAWAYS: dict[str, str] = {
    "nested range loops": "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}"
                          "{% endfor %}",
    "loops without calls": "{% set r = range(100000)|list %}{% for i in r %}{% for j in r %}{% endfor %}"
                           "{% endfor %}",
    "output explosion": "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxxxxxxxx{% endfor %}"
                        "{% endfor %}",
    "'a' * 10**9": "{{ 'a' * 10**9 }}",
    "list * 10**9": "{{ messages * 10**9 }}",
    "string doubling with +": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
                              "{% endfor %}{{ ns.s }}",
    "string doubling with ~": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                              "{% endfor %}{{ ns.s }}",
    "list doubling (shared references)": "{% set ns = namespace(x=['x' * 1000]) %}{% for i in range(64) %}"
                                         "{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x }}",
    "huge power": "{{ 10 ** (10 ** 10) }}{{ 2 ** 100000 }}",
    "power tower by squaring": "{% set ns = namespace(x=7) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}"
                               "{% endfor %}{{ ns.x }}",
    "endless macro recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "exponential macro recursion": "{% macro f(n) %}{% if n < 64 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}"
                                   "{% endmacro %}{{ f(0) }}",
    "recursion holding big strings": BIG + "{% macro f(n, s) %}{{ f(n + 1, s ~ n) }}{% endmacro %}{{ f(0, big) }}",
    "deep recursion via nested namespace": "{% set ns = namespace(x=none) %}{% for i in range(100000) %}"
                                           "{% set ns.x = namespace(inner=ns.x) %}{% endfor %}{{ ns.x }}",
    "deep nesting via lists": "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}"
                              "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
    "huge join of range(100000)|list, repeated": "{% set l = range(100000)|list %}{% set ns = namespace(s='') %}"
                                                 "{% for i in range(100000) %}{% set ns.s = ns.s ~ l|join(',') %}"
                                                 "{% endfor %}{{ ns.s }}",
    "join with a huge separator": "{{ range(5000)|join('x' * 999999) }}",
    "str.join with a huge separator": "{{ ('x' * 999999).join(range(5000)|map('string')) }}",
    "center() width at compile time": "{{ 'a'|center(999999999) }}",
    "%-format width at compile time": "{{ '%0999999999d' % 1 }}",
    "|format width": "{{ '%0999999999d'|format(1) }}",
    "str.format width": "{{ '{:999999999}'.format(1) }}{{ '{:{}}'.format(1, 999999999) }}",
    "ljust / zfill": "{{ 'a'.ljust(10**9) }}{{ 'a'.zfill(10**9) }}",
    "replace with a huge string": "{{ ('x' * 5000)|replace('x', 'y' * 999999) }}"
                                  "{{ ('x' * 5000).replace('', 'y' * 99999) }}",
    "indent by a huge prefix": "{{ range(5000)|join('\\n')|indent('x' * 999999) }}",
    "expandtabs": "{{ ('\\t' * 999999).expandtabs(999999) }}",
    "translate to huge strings": "{{ ('x' * 999999).translate({120: 'y' * 999999}) }}",
    "int.to_bytes": "{{ (1).to_bytes(10**9, 'big') }}",
    "tojson with a huge indent": "{% set ns = namespace(x=range(2000)|list) %}{% for i in range(60) %}"
                                 "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson(indent=200) }}",
    "batch padding": "{{ [1]|batch(10**9, 0)|list|length }}",
    "a slow filter (a Python loop inside |slice)": "{{ ('x' * 7000000)|slice(100000)|list|length }}",
    "split into millions of parts": "{{ (' ' * 7000000).split(' ')|length }}",
    "sum of lists (quadratic)": "{{ ([[1]] * 100000)|sum(start=[])|length }}",
    "map accumulates huge strings": "{{ range(100000)|map('center', 999999)|list|length }}",
    "set block captures a huge buffer": BIG + "{% set x %}{% for i in range(100000) %}{{ big }}{% endfor %}"
                                        "{% endset %}{{ x|length }}",
    "macro buffer": BIG + "{% macro m() %}{% for i in range(100000) %}{{ big }}{% endfor %}{% endmacro %}"
                          "{{ m()|length }}",
    "deadline inside a filter that catches ValueError": "{% for i in range(100000) %}{% for j in range(100000) %}"
                                                        "{{ 'x'|int }}{% endfor %}{% endfor %}",
    "strftime_now with a huge format": "{{ strftime_now('%c' * 999999) }}",
}

RSS_LIMIT_MB = 500


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return 0.0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


RUNAWAY_TIMES: dict[str, float] = {}


@pytest.mark.parametrize("name", list(RUNAWAYS))
def test_runaway_template_is_stopped(name: str) -> None:
    baseline, peak_before = _rss_mb(), _maxrss_mb()
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(_rss_mb())
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with pytest.raises(TemplateError) as caught:
            ChatTemplate(RUNAWAYS[name]).render(MESSAGES)
    finally:
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
    growth = max(max(samples, default=baseline) - baseline, _maxrss_mb() - peak_before)
    RUNAWAY_TIMES[name] = elapsed
    print(f"runaway {name!r}: stopped in {elapsed:.2f} s, memory +{growth:.0f} MB: {caught.value}")
    # Stopped by the 2 s render deadline (or sooner by a size limit); what follows it is timed as
    # a ratio to a reference workload, so a busy machine does not fail this.
    assert within_deadline(elapsed, RENDER_SECONDS, 0.5), (name, elapsed, str(caught.value))
    assert growth < RSS_LIMIT_MB, (name, growth)
    assert "chat template" in str(caught.value)


def test_runaway_summary() -> None:
    """One line for the run's summary (after the parametrised runaways above)."""
    assert len(RUNAWAYS) >= 20
    if len(RUNAWAY_TIMES) == len(RUNAWAYS):
        worst = max(RUNAWAY_TIMES, key=RUNAWAY_TIMES.__getitem__)
        print(f"{len(PAYLOADS)} payloads; {len(RUNAWAYS)} runaways, slowest {worst!r} "
              f"{RUNAWAY_TIMES[worst]:.2f} s")
        report("chat template unit checks", f"{len(PAYLOADS)} code-execution payloads inert, "
                                            f"{len(RUNAWAYS)} runaway templates stopped in <= "
                                            f"{RUNAWAY_TIMES[worst]:.1f} s")


@pytest.mark.parametrize("source, needle", [
    ("{% for x in messages %}", "not valid Jinja"),
    ("{{ messages|no_such_filter }}", "not valid Jinja"),
    ("{{ 1" + "0" * 5000 + " }}", "could not be compiled"),
    ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "chat template"),
    ("x" * (MAX_TEMPLATE_CHARS + 1), "characters long"),
])
def test_templates_that_cannot_be_compiled_raise_template_error(source: str, needle: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError, match=needle):
        ChatTemplate(source)
    assert within(time.monotonic() - started, 2.5)


# -- ordinary templates -------------------------------------------------------------------------
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
DATED_TOOLS = (
    "{{ bos_token }}<|system|>Today is {{ strftime_now('%d %B %Y') }}.\n"
    "{% set tools = [{'name': 'search', 'parameters': {'q': {'type': 'string'}}}] %}"
    "Tools: {{ tools|tojson }}\nIndented: {{ tools[0]|tojson(indent=2) }}\n"
    "{% for message in messages %}<|{{ message.role }}|>{{ message.content|tojson }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
MISTRALISH = (
    "{% set ns = namespace(system='', last_user=-1) %}{% for m in messages %}{% if m.role == 'system' %}"
    "{% set ns.system = ns.system ~ m.content %}{% elif m.role == 'user' %}{% set ns.last_user = loop.index0 %}"
    "{% endif %}{% endfor %}{{ bos_token }}{% for m in messages[1:] if m.role != 'system' %}"
    "{% if m.role == 'user' %}[INST] {% if loop.index0 == ns.last_user - 1 and ns.system %}{{ ns.system }}\n\n"
    "{% endif %}{{ m.content }} [/INST]{% else %}{% generation %}{{ ' ' ~ m.content ~ eos_token }}"
    "{% endgeneration %}"
    "{% endif %}{% endfor %}{{ '%s|%d|%.1f' % ('x', messages|length, 1.5) }}{{ '{}-{}'.format(1, 'two') }}"
    "{{ messages|map(attribute='role')|join(',') }}"
    "{{ (messages|selectattr('role', 'equalto', 'user')|list)[-1].content|upper }}"
    "{% for m in messages|reverse %}{% if loop.first %}{{ m.content[:5] }}{% endif %}{% endfor %}"
)


def _plain_jinja(source: str, messages: list[dict[str, str]], **extra: object) -> str:
    """What Jinja itself renders (the sandbox llama-cpp-python and transformers use)."""
    import json
    from datetime import datetime

    from desktop.core.engine.chat_template import _IgnoreGenerationTags

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_IgnoreGenerationTags, loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
        json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    return env.from_string(source).render(messages=messages, add_generation_prompt=True,
                                          raise_exception=raise_exception,
                                          strftime_now=lambda fmt: datetime.now().strftime(fmt), **extra)


def test_chatml_renders_exactly() -> None:
    prompt = ChatTemplate(CHATML_TEMPLATE, eos_token="<|im_end|>").render(MESSAGES)
    expected = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in MESSAGES)
    assert prompt.prompt == expected + "<|im_start|>assistant\n"
    assert prompt.stop == ["<|im_end|>"]
    no_prompt = ChatTemplate(CHATML_TEMPLATE).render(MESSAGES, add_generation_prompt=False)
    assert no_prompt.prompt == expected and no_prompt.stop == []


def test_starter_model_template_renders_like_jinja(starter_model: Path) -> None:
    source = read_gguf(starter_model).chat_template
    assert source and "<|im_start|>" in source
    template = ChatTemplate(source, eos_token="<|im_end|>", bos_token="<|im_start|>")
    with_system = template.render(MESSAGES).prompt
    assert with_system == _plain_jinja(source, MESSAGES, eos_token="<|im_end|>", bos_token="<|im_start|>")
    assert with_system.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert with_system.endswith("<|im_start|>user\nAnd <b>3 * 3</b> & more?<|im_end|>\n<|im_start|>assistant\n")
    without = template.render(NO_SYSTEM).prompt
    assert without.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert without == _plain_jinja(source, NO_SYSTEM, eos_token="<|im_end|>", bos_token="<|im_start|>")


def test_llama3_template() -> None:
    prompt = ChatTemplate(LLAMA3, eos_token="<|eot_id|>", bos_token="<|begin_of_text|>").render(MESSAGES).prompt
    assert prompt == _plain_jinja(LLAMA3, MESSAGES, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful")
    assert prompt.count("<|eot_id|>") == 4
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_gemma_template_refuses_a_system_role_and_merging_fixes_it() -> None:
    template = ChatTemplate(GEMMA, eos_token="<end_of_turn>", bos_token="<bos>")
    with pytest.raises(TemplateRefusal, match="System role not supported"):
        template.render(MESSAGES)
    merged = merge_system_into_first_user(MESSAGES)
    prompt = template.render(merged).prompt
    assert prompt == _plain_jinja(GEMMA, merged, bos_token="<bos>")
    assert prompt.startswith("<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello! What's 2 + 2?")
    assert "<start_of_turn>model\n2 + 2 is 4.<end_of_turn>" in prompt
    assert prompt.endswith("<start_of_turn>model\n")
    with pytest.raises(TemplateRefusal, match="alternate"):
        template.render([MESSAGES[1], MESSAGES[1]])


def test_strftime_now_and_tojson_template() -> None:
    from datetime import datetime

    prompt = ChatTemplate(DATED_TOOLS, bos_token="<s>").render(MESSAGES).prompt
    assert prompt == _plain_jinja(DATED_TOOLS, MESSAGES, bos_token="<s>")
    assert datetime.now().strftime("%Y") in prompt
    assert 'Tools: [{"name": "search", "parameters": {"q": {"type": "string"}}}]' in prompt
    assert '\n  "name": "search",\n' in prompt
    assert '<|user|>"And <b>3 * 3</b> & more?"' in prompt


def test_namespaces_slices_formats_and_generation_tags() -> None:
    prompt = ChatTemplate(MISTRALISH, eos_token="</s>", bos_token="<s>").render(MESSAGES).prompt
    assert prompt == _plain_jinja(MISTRALISH, MESSAGES, eos_token="</s>", bos_token="<s>")
    assert "[INST] You are a helpful assistant.\n\nAnd <b>3 * 3</b>" in prompt
    assert "x|4|1.5" in prompt and "1-two" in prompt and "system,user,assistant,user" in prompt


def test_long_conversation_renders_fully_and_quickly(starter_model: Path) -> None:
    """The guards must not break big but legitimate renders: 400 turns, and one message of
    1.5 million characters (over the old 1,000,000-character limit on ``+``)."""
    source = read_gguf(starter_model).chat_template
    template = ChatTemplate(source, eos_token="<|im_end|>")
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "words " * 300}
             for i in range(400)]
    started = time.monotonic()
    prompt = template.render(turns).prompt
    elapsed = time.monotonic() - started
    assert prompt == _plain_jinja(source, turns, eos_token="<|im_end|>")
    assert within(elapsed, 1.0), elapsed
    pasted = [{"role": "user", "content": "summarise: " + "lorem ipsum " * 125_000}]
    assert len(pasted[0]["content"]) > 1_000_000
    assert template.render(pasted).prompt == _plain_jinja(source, pasted, eos_token="<|im_end|>")
    too_long = [{"role": "user", "content": "x" * (MAX_PROMPT_CHARS + 1)}]
    with pytest.raises(TemplateError):
        template.render(too_long)


def test_merge_system_into_first_user() -> None:
    merged = merge_system_into_first_user(MESSAGES)
    assert [m["role"] for m in merged] == ["user", "assistant", "user"]
    assert merged[0]["content"] == "You are a helpful assistant.\n\nHello! What's 2 + 2?"
    assert merged[2]["content"] == MESSAGES[3]["content"]
    assert MESSAGES[1]["content"] == "Hello! What's 2 + 2?"  # the input is not changed
    assert merge_system_into_first_user(NO_SYSTEM) == NO_SYSTEM
    two = [{"role": "system", "content": "A"}, {"role": "system", "content": "B"},
           {"role": "user", "content": "q"}]
    assert merge_system_into_first_user(two) == [{"role": "user", "content": "A\n\nB\n\nq"}]
    assert merge_system_into_first_user([{"role": "system", "content": "only"}]) == []


def test_a_template_error_leaves_the_template_usable() -> None:
    """After a stopped render, the same template (and its environment) renders normally again."""
    source = "{% if messages|length > 3 %}{% for i in range(100000) %}{% for j in range(100000) %}" \
             "{% endfor %}{% endfor %}{% endif %}" + CHATML_TEMPLATE
    template = ChatTemplate(source)
    with pytest.raises(TemplateError, match="ran longer than 0.3 s"):
        template.render(MESSAGES, seconds=0.3)
    assert template.render(MESSAGES[:2]).prompt.startswith("<|im_start|>system\n")
    import sys
    assert sys.gettrace() is None or "coverage" in repr(sys.gettrace())
