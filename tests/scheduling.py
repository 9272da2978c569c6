"""The order tests are handed to xdist's workers: the longest first.

xdist hands tests out in collection order, so a long test collected late can leave three
workers idle while the fourth finishes it. The real-agent group (one worker runs its CLIs
in turn, ~85 s together) starts first, then the tests below, each measured at 10 s or more
under `make test` on the 2-core machine (`pytest --durations=0`, 2026-12-07); the rest keep
their order. Regenerate the list when the slowest tests change.
"""

from __future__ import annotations

import pytest

SLOW_FIRST = (
    "test_host_boundary_attacks.py::test_huge_file_and_many_files_keep_the_daemon_small",
    "test_soak.py::test_100_sessions_return_resources_to_baseline",
    "test_demo.py::test_demo_shows_every_promise_offline",
    "test_cli_fast.py::test_every_fast_command_prints_what_click_prints",
    "test_agent_daemon.py::test_pending_approval_survives_kill_9_and_resume_continues",
    "test_remote_hosts.py::test_remote_agent_approvals_survive_a_killed_link_then_review_and_merge",
    "test_pty_feeder.py::test_echo_frame_arrives_while_8_sessions_stream",
    "test_remote_hosts.py::test_remote_shell_session_listed_and_driven",
    "test_daemon_faults.py::test_disk_full_under_the_store_and_worktrees",
    "test_acp_sessions.py::test_daemon_restart_resumes_the_acp_session",
    "test_sandbox_loopback.py::test_only_the_configured_host_port_is_reachable",
    "test_remote_hosts.py::test_the_ui_lists_and_drives_a_remote_session",
    "test_agent_local_servers.py::test_two_endpoints_side_by_side_without_a_daemon_restart",
    "test_host_boundary_attacks.py::test_head_pointed_at_main_cannot_touch_users_main[strict]",
    "test_attention.py::test_hooks_reach_the_daemon_from_inside_the_sandbox",
    "test_host_boundary_attacks.py::test_head_pointed_at_main_cannot_touch_users_main[workspace]",
    "test_e2e_tmux.py::test_real_ui_in_tmux",
    "test_daemon_faults.py::test_kill9_of_the_daemon_during_a_merge",
    "test_ui_new_user_tmux.py::test_a_task_with_the_last_agent_is_ctrl_n_the_prompt_and_enter",
    "test_ui_new_user_tmux.py::test_enter_on_a_builtin_session_is_not_a_trap",
    "test_agent_faults.py::test_model_endpoint_faults_are_retried_or_reported",
    "test_daemon_faults.py::test_worktree_deleted_behind_the_daemons_back",
    "test_agent_local_servers.py::test_a_finished_text_only_turn_is_waiting_for_the_next_message",
    "test_daemon_faults.py::test_disk_full_when_the_daemon_starts",
    "test_profiles.py::test_agents_command_lists_profiles",
    "test_suggest_cli.py::test_check_ruff_and_todos_start_and_dismissal_survives_a_restart",
    "test_remote_hosts.py::test_unreachable_and_broken_hosts_show_down_without_holding_up_ls",
    "test_daemon_faults.py::test_main_checkout_made_dirty_while_a_merge_runs",
    "test_agent_faults.py::test_kill9_during_a_model_stream",
    "test_ui_review_live.py::test_review_ten_files_by_keyboard_reject_two_send_and_merge",
    "test_agent_daemon.py::test_approve_deny_log_usage_and_send",
    "test_check_fix_rounds.py::test_fix_rounds_end_to_end",
    "test_demo.py::test_without_a_sandbox_the_demo_check_still_runs",
    "test_ui_live.py::test_live_session_round_trip",
)

_RANK = {nodeid: i for i, nodeid in enumerate(SLOW_FIRST)}


def rank(item: pytest.Item) -> tuple[int, int]:
    if item.get_closest_marker("xdist_group") is not None:
        return (0, 0)
    pos = _RANK.get(item.nodeid.removeprefix("tests/"))
    return (1, pos) if pos is not None else (2, 0)


def longest_first(items: list[pytest.Item]) -> None:
    items.sort(key=rank)  # stable: the rest keep their collection order
