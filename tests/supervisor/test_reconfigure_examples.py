"""Reconfiguration next to isolated sessions, lazy servers and in-flight requests (fakes)."""

from __future__ import annotations

import trio
import trio.testing

import mcpvisor as mv
from tests.supervisor.fakes import FakeServer

NO_PROBE = mv.Timeouts(probe_interval=None, request=30.0)


async def test_isolated_sessions_outlive_a_reconfiguration_of_their_server() -> None:
    fake, other = FakeServer("a"), FakeServer("b")
    spec = mv.SupervisorSpec(servers=[fake.spec(timeouts=NO_PROBE), other.spec(timeouts=NO_PROBE)])
    async with mv.open_supervisor(spec) as client, client.isolated("a") as session:
        assert (await session.call_tool("bump")).content[0].text == "1"  # type: ignore[union-attr]
        changed = mv.SupervisorSpec(servers=[fake.spec(timeouts=NO_PROBE, max_concurrency=4)])
        report = await client.reconfigure(changed)
        assert report.restarted == ("a",) and report.removed == ("b",)
        assert list(client.status().servers) == ["a", session.label]
        # The isolated session is its own: the same session, still counting.
        assert (await session.call_tool("bump")).content[0].text == "2"  # type: ignore[union-attr]
        assert (await client.call_tool("a", "bump")).content[0].text == "1"  # type: ignore[union-attr]
    assert fake.live == 0 and other.live == 0


async def test_a_lazy_server_picks_up_its_new_spec_on_its_first_request() -> None:
    fake = FakeServer("lazy")
    spec = mv.SupervisorSpec(servers=[fake.spec(start="lazy", timeouts=NO_PROBE)])
    async with mv.open_supervisor(spec) as client:
        new = mv.SupervisorSpec(
            servers=[fake.spec(start="lazy", timeouts=NO_PROBE, protocol="legacy")]
        )
        report = await client.reconfigure(new)
        assert report.restarted == ("lazy",) and fake.sessions == 0
        status = client.status().servers["lazy"]
        assert status.state is mv.ServerState.STOPPED and status.wakeable
        assert (await client.call_tool("lazy", "add", {"a": 1, "b": 2})).is_error is False
        assert fake.sessions == 1


async def test_requests_in_flight_to_an_unchanged_server_finish_across_reloads() -> None:
    keep, change = FakeServer("keep"), FakeServer("change")

    def spec(concurrency: int) -> mv.SupervisorSpec:
        return mv.SupervisorSpec(
            servers=[
                keep.spec(timeouts=NO_PROBE),
                change.spec(timeouts=NO_PROBE, max_concurrency=concurrency),
            ]
        )

    results: list[str] = []
    async with mv.open_supervisor(spec(8)) as client:

        async def wait() -> None:
            result = await client.call_tool("keep", "wait", {})
            results.append(result.content[0].text)  # type: ignore[union-attr]

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert keep.calls == 3
                for n in (4, 8, 2):
                    assert (await client.reconfigure(spec(n))).restarted == ("change",)
                keep.release.set()
    assert results == ["released"] * 3 and keep.sessions == 1 and change.sessions == 4
    assert keep.cancelled == 0


async def test_a_raised_max_isolated_lets_the_next_session_open_at_once() -> None:
    fake = FakeServer("a")

    def spec(most: int) -> mv.SupervisorSpec:
        return mv.SupervisorSpec(servers=[fake.spec(timeouts=NO_PROBE, max_isolated=most)])

    async with mv.open_supervisor(spec(1)) as client, client.isolated("a"):
        report = await client.reconfigure(spec(2))
        assert report.updated == ("a",) and report.fields["a"] == ("max_isolated",)
        with trio.fail_after(5):
            async with client.isolated("a") as second:
                assert (await second.call_tool("bump")).content[0].text == "1"  # type: ignore[union-attr]


async def test_a_call_cut_off_by_a_reconfiguration_says_the_server_restarted() -> None:
    fake = FakeServer("a")

    def spec(concurrency: int) -> mv.SupervisorSpec:
        return mv.SupervisorSpec(
            servers=[fake.spec(timeouts=NO_PROBE, max_concurrency=concurrency)]
        )

    async with mv.open_supervisor(spec(8)) as client:
        caught: list[BaseException] = []

        async def wait() -> None:
            try:
                await client.call_tool("a", "wait", {})
            except mv.RequestInterruptedError as error:
                caught.append(error)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert (await client.reconfigure(spec(4))).restarted == ("a",)
        assert len(caught) == 1
        assert "restarted with its new spec" in str(caught[0])
