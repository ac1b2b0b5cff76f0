"""REST API v1: a brand's own words for the persona classifier (GET read; POST, DELETE write).

A word added here counts for every comment classified from then on (imports, API writes,
`advocado voc classify`); comments already stored keep their analysis until they change."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from advocado.domain.records import FieldError
from advocado.services import audit, lexicon
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ApiKey
from advocado.web.api import schemas
from advocado.web.api.routes import PREFIX, _ApiRoute, _json, _write, api_key

router = APIRouter(
    prefix=f"{PREFIX}/lexicon",
    tags=["Lexicon"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid input; nothing saved."},
    },
)


class TermIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    term: str = Field(description="The word as customers write it, e.g. '丝滑' or 'snappy'.")
    persona: str = Field(
        description="emotional or rational: the side it speaks for; ignore: never count it."
    )
    weight: float = Field(1.0, description="1 = enough on its own to decide; at most 5.")


class TermOut(BaseModel):
    term: str
    persona: str
    weight: float


class TermList(BaseModel):
    items: list[TermOut]


def _validated(body: TermIn) -> lexicon.BrandTerm:
    try:
        return lexicon.validate_term(body.term, body.persona, body.weight)
    except lexicon.LexiconError as error:
        message = str(error)
        field = next((f for f in ("persona", "weight") if message.startswith(f)), "term")
        raise FieldError(field, message) from None


@router.get("", response_model=TermList, summary="The brand's words")
def list_terms(request: Request) -> Response:
    with read_only(request.app.state.engine) as session:
        found = lexicon.list_terms(session)
    return _json(200, {"items": [record.as_dict() for record in found]})


ONE_MEANING = "A word has one meaning: adding it to one side takes it off the other."


@router.post("", response_model=TermOut, status_code=201, summary="Add or re-weight a word",
             description=ONE_MEANING)  # fmt: skip
def add_term(request: Request, body: TermIn, key: ApiKey = Depends(api_key)) -> Response:
    brand = _validated(body)

    def action(session: Session) -> tuple[int, Any]:
        lexicon.add_terms(session, [brand], actor=audit.api_actor(key.prefix))
        return 201, {"term": brand.term, "persona": brand.persona, "weight": brand.weight}

    return _write(request, key, body.model_dump(), action)


@router.delete("/{term}", status_code=204, summary="Remove a word",
               responses={404: {"description": "Not a brand word."}})  # fmt: skip
def remove_term(request: Request, term: str, key: ApiKey = Depends(api_key)) -> Response:
    with unit_of_work(request.app.state.engine) as session:
        found = lexicon.remove_term(session, term=term, actor=audit.api_actor(key.prefix))
    if not found:
        return _json(404, {"detail": f"{term!r} is not a brand word."})
    return Response(status_code=204)
