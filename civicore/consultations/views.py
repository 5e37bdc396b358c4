"""Pages for consultations: the public list and consultation page with the citizen's forms (idea,
vote, comment, follow), and the back office's list, new-consultation form and consultation page.
Thin: they parse input, call one service or selector, render. Every form works without
JavaScript; an error is shown as a message on the page, never as a lost form."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.consultations import models as m
from civicore.consultations import selectors, services
from civicore.consultations.models import Comment, Consultation, Idea, Moderation
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from civicore.core.files import private_file_response
from civicore.portal.pagination import paginate_page


def _field_errors(exc: ApplicationError) -> dict[str, str]:
    """A validation error's messages by field; any other error is one message for the form."""
    details = exc.details if isinstance(exc, ValidationFailed) and isinstance(exc.details, dict) else {}
    errors = {str(key): str(value) for key, value in details.items()}
    return errors or {"form": exc.message}


def _public(key: str) -> Consultation:
    try:
        return selectors.public_consultation(key)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _idea(idea_id: int) -> Idea:
    try:
        return selectors.public_idea(idea_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _back_to(idea: Idea) -> HttpResponse:
    """Back to the page of the consultation that shows the idea."""
    url = reverse("consultations:detail", kwargs={"key": idea.consultation.slug})
    number = selectors.idea_page_number(idea)
    query = f"?page={number}" if number > 1 else ""
    return redirect(f"{url}{query}#idea-{idea.pk}")


def _refuse(exc: PermissionDenied) -> DjangoPermissionDenied:
    return DjangoPermissionDenied(exc.message)


# --- the public --------------------------------------------------------------------------------------


@require_GET
def consultation_list(request: HttpRequest) -> HttpResponse:
    consultations = list(selectors.public_consultations()[:200])
    context = {
        "open": [c for c in consultations if c.status == Consultation.Status.OPEN],
        "finished": [c for c in consultations if c.status != Consultation.Status.OPEN],
    }
    return render(request, "consultations/list.html", context)


def _sort_links(current: str) -> list[dict[str, Any]]:
    labels = {"oldest": _("Oldest first"), "newest": _("Newest first"), "votes": _("Most votes")}
    return [
        {"label": label, "url": f"?sort={name}#ideas-heading", "current": name == current}
        for name, label in labels.items()
    ]


def _ideas_context(request: HttpRequest, consultation: Consultation) -> dict[str, Any]:
    """One page of the consultation's ideas in the order the reader chose, with the links around it."""
    sort = selectors.idea_order(request.GET.get("sort"))
    paged = paginate_page(request, selectors.ideas_of(consultation, sort), selectors.IDEAS_PER_PAGE)
    return {
        "ideas": paged["page"].object_list,
        "ideas_total": paged["page"].paginator.count,
        "sort_links": _sort_links(sort),
        **paged,
    }


def _detail_context(request: HttpRequest, consultation: Consultation, **more: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "consultation": consultation,
        "documents": consultation.documents.all(),
        **_ideas_context(request, consultation),
        "mine": selectors.choices_of(request.user, consultation),
        "accepting": consultation.accepts_contributions,
        "idea_title_max": m.IDEA_TITLE_MAX,
        "idea_body_max": m.IDEA_BODY_MAX,
        "comment_max": m.COMMENT_MAX,
        "display_name_max": m.DISPLAY_NAME_MAX,
        "values": {},
        "errors": {},
    }
    context.update(more)
    return context


@require_GET
def consultation_detail(request: HttpRequest, key: str) -> HttpResponse:
    consultation = _public(key)
    return render(request, "consultations/detail.html", _detail_context(request, consultation))


@require_GET
def consultation_document(request: HttpRequest, key: str, document_id: int) -> FileResponse:
    consultation = _public(key)
    document = consultation.documents.filter(pk=document_id).first()
    if document is None:
        raise Http404(_("No document has this number."))
    response = private_file_response(
        document.file, filename=document.original_name, content_type="application/pdf", as_attachment=False
    )
    response["Cache-Control"] = "public, max-age=300"
    return response


@login_required
@require_POST
def idea_new(request: HttpRequest, key: str) -> HttpResponse:
    consultation = _public(key)
    values = {name: str(request.POST.get(name, "")) for name in ("title", "body", "display_name")}
    try:
        idea = services.idea_post(
            user=request.user,
            consultation=consultation,
            title=values["title"],
            body=values["body"],
            display_name=values["display_name"],
        )
    except PermissionDenied as exc:
        raise _refuse(exc) from exc
    except ApplicationError as exc:
        context = _detail_context(request, consultation, values=values, errors=_field_errors(exc))
        return render(request, "consultations/detail.html", context, status=exc.status)
    messages.success(request, _("Thank you. Your idea is published and you follow it."))
    return _back_to(idea)


def _citizen_action(request: HttpRequest, idea: Idea, run: Any, done: str) -> HttpResponse:
    try:
        run()
    except PermissionDenied as exc:
        raise _refuse(exc) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back_to(idea)


@login_required
@require_POST
def idea_vote(request: HttpRequest, idea_id: int) -> HttpResponse:
    idea = _idea(idea_id)
    if request.POST.get("withdraw"):
        return _citizen_action(
            request,
            idea,
            lambda: services.vote_withdraw(user=request.user, idea=idea),
            _("Your vote was withdrawn."),
        )
    return _citizen_action(
        request, idea, lambda: services.vote_cast(user=request.user, idea=idea), _("Thank you for your vote.")
    )


@login_required
@require_POST
def comment_new(request: HttpRequest, idea_id: int) -> HttpResponse:
    idea = _idea(idea_id)
    return _citizen_action(
        request,
        idea,
        lambda: services.comment_post(
            user=request.user,
            idea=idea,
            body=request.POST.get("body", ""),
            display_name=request.POST.get("display_name", ""),
        ),
        _("Your comment is published."),
    )


@login_required
@require_POST
def idea_follow(request: HttpRequest, idea_id: int) -> HttpResponse:
    idea = _idea(idea_id)
    follow = request.POST.get("follow") != "0"
    return _citizen_action(
        request,
        idea,
        lambda: services.idea_follow(user=request.user, idea=idea, follow=follow),
        _("You follow this idea.") if follow else _("You no longer follow this idea."),
    )


# --- back office -------------------------------------------------------------------------------------


def _officer(request: HttpRequest, permission: str = permissions.CONSULTATION_MODERATE) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permission)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(
            _("Only officers who run or moderate consultations can use this page.")
        ) from exc


def _office_consultation(officer: Officer, consultation_id: int) -> Consultation:
    try:
        return selectors.office_consultation(officer, consultation_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise _refuse(exc) from exc


@login_required
@require_GET
def office_list(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    context = {
        "officer": officer,
        "consultations": selectors.office_consultations(officer)[:200],
        "moderations": selectors.moderation_log(officer)[:50],
        "may_manage": permissions.has_perm(officer, permissions.CONSULTATION_MANAGE),
    }
    response = render(request, "consultations/office/list.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


NEW_FIELDS = ("title", "question", "description", "opens_on", "closes_on")


@login_required
@require_http_methods(["GET", "POST"])
def office_new(request: HttpRequest) -> HttpResponse:
    officer = _officer(request, permissions.CONSULTATION_MANAGE)
    values = {name: "" for name in NEW_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {name: str(request.POST.get(name, "")) for name in NEW_FIELDS}
        try:
            consultation = services.consultation_create(officer=officer, **values)
        except ApplicationError as exc:
            errors, status = _field_errors(exc), exc.status
        else:
            messages.success(
                request, _("The consultation was saved as a draft. Add documents, then publish it.")
            )
            return redirect("consultations:office_detail", consultation_id=consultation.pk)
    return render(request, "consultations/office/new.html", _form_context(values, errors), status=status)


def _form_context(values: dict[str, str], errors: dict[str, str], **more: Any) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "title_max": m.TITLE_MAX,
        "question_max": m.QUESTION_MAX,
        "description_max": m.DESCRIPTION_MAX,
        **more,
    }


@login_required
@require_http_methods(["GET", "POST"])
def office_edit(request: HttpRequest, consultation_id: int) -> HttpResponse:
    """Change a draft, or an open consultation's description and closing date."""
    officer = _officer(request, permissions.CONSULTATION_MANAGE)
    consultation = _office_consultation(officer, consultation_id)
    if consultation.status not in (Consultation.Status.DRAFT, Consultation.Status.OPEN):
        messages.error(request, _("A closed consultation cannot be changed."))
        return redirect("consultations:office_detail", consultation_id=consultation.pk)
    values = {name: str(getattr(consultation, name)) for name in NEW_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {name: str(request.POST.get(name, values[name])) for name in NEW_FIELDS}
        try:
            services.consultation_update(officer=officer, consultation=consultation, **values)
        except PermissionDenied as exc:
            raise _refuse(exc) from exc
        except ApplicationError as exc:
            errors, status = _field_errors(exc), exc.status
        else:
            messages.success(request, _("The consultation was saved."))
            return redirect("consultations:office_detail", consultation_id=consultation.pk)
    fixed = services.EDITABLE_WHEN_OPEN if consultation.status == Consultation.Status.OPEN else None
    context = _form_context(values, errors, consultation=consultation, editable=fixed)
    return render(request, "consultations/office/new.html", context, status=status)


@login_required
@require_GET
def office_detail(request: HttpRequest, consultation_id: int) -> HttpResponse:
    officer = _officer(request)
    consultation = _office_consultation(officer, consultation_id)
    context = {
        "officer": officer,
        "consultation": consultation,
        "documents": consultation.documents.all(),
        **_ideas_context(request, consultation),
        "moderations": selectors.moderation_log(officer, consultation)[:100],
        "may_manage": permissions.has_perm(officer, permissions.CONSULTATION_MANAGE),
        "reasons": Moderation.Reason.choices,
        "idea_statuses": Idea.Status.choices,
    }
    response = render(request, "consultations/office/detail.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


def _idea_of(consultation: Consultation, value: Any) -> Idea:
    idea = consultation.ideas.filter(pk=int(value)).first() if str(value).isdigit() else None
    if idea is None:
        raise Http404(_("No idea has this number."))
    return idea


def _comment_of(consultation: Consultation, value: Any) -> Comment:
    found = (
        Comment.objects.filter(idea__consultation=consultation, pk=int(value)).select_related("idea").first()
        if str(value).isdigit()
        else None
    )
    if found is None:
        raise Http404(_("No comment has this number."))
    return found


def _act(action: str, officer: Officer, consultation: Consultation, request: HttpRequest) -> str:
    post = request.POST
    if action == "publish":
        services.consultation_publish(officer=officer, consultation=consultation)
        return _("The consultation is published.")
    if action == "close":
        services.consultation_close(officer=officer, consultation=consultation)
        return _("The consultation is closed.")
    if action == "respond":
        services.consultation_respond(
            officer=officer,
            consultation=consultation,
            text=post.get("response_text", ""),
            actions=post.get("response_actions", ""),
        )
        return _("The official response is published.")
    if action == "document":
        services.consultation_document_add(
            officer=officer,
            consultation=consultation,
            title=post.get("title", ""),
            upload=request.FILES.get("file"),
        )
        return _("The document was added.")
    if action == "remove-document":
        document_id = str(post.get("document", ""))
        services.consultation_document_remove(
            officer=officer,
            consultation=consultation,
            document_id=int(document_id) if document_id.isdigit() else 0,
        )
        return _("The document was removed.")
    if action == "idea-status":
        services.idea_set_status(
            officer=officer,
            idea=_idea_of(consultation, post.get("idea", "")),
            status=post.get("status", ""),
            note=post.get("note", ""),
        )
        return _("The idea's status was saved.")
    if action == "hide":
        subject: dict[str, Any] = (
            {"comment": _comment_of(consultation, post["comment"])}
            if post.get("comment")
            else {"idea": _idea_of(consultation, post.get("idea", ""))}
        )
        services.moderate(
            officer=officer, reason=post.get("reason", ""), note=post.get("note", ""), **subject
        )
        return _("Hidden. The author was told why.")
    raise Http404(_("Unknown action."))


@login_required
@require_POST
def office_action(request: HttpRequest, consultation_id: int, action: str) -> HttpResponse:
    officer = _officer(request)
    consultation = _office_consultation(officer, consultation_id)
    try:
        messages.success(request, _act(action, officer, consultation, request))
    except PermissionDenied as exc:
        raise _refuse(exc) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    url = reverse("consultations:office_detail", kwargs={"consultation_id": consultation.pk})
    return redirect(url + _where_the_idea_is(consultation, request))


def _where_the_idea_is(consultation: Consultation, request: HttpRequest) -> str:
    """After acting on an idea or a comment, the page and place that show it."""
    try:
        if request.POST.get("comment"):
            idea = _comment_of(consultation, request.POST["comment"]).idea
        elif request.POST.get("idea"):
            idea = _idea_of(consultation, request.POST["idea"])
        else:
            return ""
    except Http404:
        return ""
    number = selectors.idea_page_number(idea)
    return (f"?page={number}" if number > 1 else "") + f"#idea-{idea.pk}"
