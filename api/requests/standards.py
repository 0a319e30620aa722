"""Request body of the local minimum-living standards."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.deps import Amount, IsoDate, StrictModel, with_reason
from domain.commands.standards import SetStandard as SetStandardCommand
from domain.provenance import Provenance


class SetStandard(StrictModel):
    division: Annotated[
        str,
        Field(
            min_length=1,
            max_length=12,
            description="the province, prefecture or county that publishes it (2, 4 or 6 digits)",
        ),
    ]
    programme: Annotated[str, Field(max_length=20, description="dibao or tekun")]
    effective_from: IsoDate
    monthly_amount: Amount
    currency: Annotated[str, Field(max_length=3, description="CNY")] = "CNY"
    source: Annotated[
        str,
        Field(min_length=1, max_length=500, description="the notice it is published in"),
    ]
    reason: Annotated[
        str | None,
        Field(max_length=2000, description="why, when it corrects the figure of a date"),
    ] = None

    def command(self, by: Provenance) -> SetStandardCommand:
        return SetStandardCommand(
            division=self.division,
            programme=self.programme,
            effective_from=self.effective_from,
            monthly_amount=self.monthly_amount,
            currency=self.currency,
            source=self.source,
            reason=self.reason,
            provenance=with_reason(by, self.reason),  # a set's reason is kept too
        )
