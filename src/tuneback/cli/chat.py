"""``tuneback chat``: chat with a model in the terminal and rate each answer."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from tuneback.cli.app import DatabaseOption, app, err, open_store, out
from tuneback.errors import ModelError, TuneBackError
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService, Reply
from tuneback.services.feedback import FeedbackService

RATE_PROMPT = "rate › t 👍  f 👎  1-5 faces  c comment  e better answer  r regenerate  ⏎ skip: "
FACES = "😞🙁😐🙂😀"


def _stream(reply: Reply) -> bool:
    """Print the answer as it arrives; False when it failed or was stopped."""
    out.print(f"[bold magenta]{reply.adapter.name} ›[/bold magenta] ", end="")
    try:
        for chunk in reply:
            out.print(chunk, end="", markup=False, highlight=False)
    except KeyboardInterrupt:
        reply.cancel()
        out.print("\n[dim](stopped)[/dim]")
        return False
    except ModelError as exc:
        out.print()
        err.print(f"error: {exc.message}", markup=False)
        return False
    out.print()
    run = reply.run
    if run is not None:
        latency = f"{run.latency_ms / 1000:.1f} s" if run.latency_ms else ""
        out.print(f"[dim]{run.model} · {latency} · run {run.id}[/dim]")
    return True


def _rate(feedback: FeedbackService, reply: Reply, user: str) -> str:
    """Ask for a rating; returns "regenerate" when the user asked for another answer."""
    while True:
        choice = out.input(RATE_PROMPT).strip().lower()
        try:
            if choice == "":
                return "next"
            if choice in ("t", "f"):
                value = "up" if choice == "t" else "down"
                feedback.record(run_id=reply.run_id, key="thumbs", value=value, user=user)
                out.print(f"[dim]saved {'👍' if value == 'up' else '👎'}[/dim]")
                return "next"
            if choice in ("1", "2", "3", "4", "5"):
                face = FACES[int(choice) - 1]
                feedback.record(run_id=reply.run_id, key="faces", value=face, user=user)
                out.print(f"[dim]saved {face}[/dim]")
                return "next"
            if choice == "c":
                text = out.input("comment › ").strip()
                if text:
                    feedback.record(run_id=reply.run_id, key="comment", comment=text, user=user)
                    out.print("[dim]comment saved[/dim]")
                return "next"
            if choice == "e":
                text = out.input("better answer › ").strip()
                if text:
                    feedback.record(
                        run_id=reply.run_id, key="correction", correction=text, user=user
                    )
                    out.print("[dim]better answer saved[/dim]")
                return "next"
            if choice == "r":
                return "regenerate"
            out.print("[yellow]choose t, f, 1-5, c, e, r, or press Enter to skip[/yellow]")
        except TuneBackError as exc:
            err.print(f"error: {exc.message}", markup=False)
            return "next"


@app.command()
def chat(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", metavar="SPEC", help="Model spec (default: TUNEBACK_MODEL)."),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", "-s", help="Custom instructions (system prompt).")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Name your ratings carry (default: your login name).")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Project to record into.", envvar="TUNEBACK_PROJECT")
    ] = None,
    rate: Annotated[
        bool, typer.Option("--rate/--no-rate", help="Ask for a rating after each answer.")
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Chat with a model in the terminal; every answer is recorded and can be rated.

    Type a message and press Enter. After each answer: t/f for thumbs up/down,
    1-5 for a face, c to comment, e to write a better answer, r to regenerate,
    Enter to skip. /new starts a new conversation, /quit (or Ctrl+D) ends.
    Ctrl+C stops an answer mid-way.
    """
    from tuneback.cli.app import settings_with

    settings = settings_with(project=project, model=model, database_url=database_url)
    name = user or getpass.getuser()
    with open_store(settings.database_url) as store:
        catalog = ModelCatalog([settings.model])
        service = ChatService(store, catalog)
        feedback = FeedbackService(store)
        adapter = catalog.default
        if adapter.status == "loading":
            with err.status(f"loading {adapter.name}…"):
                adapter.wait_until_loaded()
        conversation = service.start_conversation(
            project=settings.project, user=name, system_prompt=system
        )
        out.print(f"[bold]{adapter.name}[/bold] [dim]· /new, /quit · recording as {name}[/dim]")
        while True:
            try:
                text = out.input("[bold cyan]you ›[/bold cyan] ").strip()
            except (EOFError, KeyboardInterrupt):
                out.print()
                break
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            if text == "/new":
                service.end_conversation(conversation.id)
                conversation = service.start_conversation(
                    project=settings.project, user=name, system_prompt=system
                )
                out.print("[dim]new conversation[/dim]")
                continue
            message = service.add_user_message(conversation.id, text)
            reply = service.reply(message.id)
            while _stream(reply) and rate:
                if _rate(feedback, reply, name) != "regenerate" or reply.message is None:
                    break
                reply = service.regenerate(reply.message.id)
        service.end_conversation(conversation.id)
