"""figures: NPS counts per grain, dimension, value and period; responses by date

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "figures",
        sa.Column("grain", sa.String(length=5), nullable=False),
        sa.Column("dimension", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("promoters", sa.BigInteger(), nullable=False),
        sa.Column("passives", sa.BigInteger(), nullable=False),
        sa.Column("detractors", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "dimension", "value", "period_start"),
        schema="scoring",
    )
    op.create_index(
        "ix_scoring_responses_responded_at", "responses", ["responded_at"], schema="scoring"
    )
    # Count the responses scored before the figures existed, by the rules of
    # nps_scoring.domain.figures, in UTC (with SCORING_FIGURES_TIMEZONE set to another zone, run
    # `nps-scoring rebuild-figures`; `--reclassify` also gives their comments themes, which
    # responses scored before 0003 lack: they count as no_comment until then). Without this,
    # an update of such a response would take it out of buckets it was never counted in.
    op.execute(INITIAL_FIGURES)


INITIAL_FIGURES = """
WITH r AS (
    SELECT segment, (responded_at AT TIME ZONE 'UTC')::date AS day, source, survey_id, themes,
           attributes
    FROM scoring.responses
), g AS (
    SELECT 'day' AS grain, day AS period_start, r.* FROM r
    UNION ALL
    SELECT 'week', day - (extract(isodow FROM day)::int - 1), r.* FROM r
    UNION ALL
    SELECT 'month', date_trunc('month', day)::date, r.* FROM r
), b AS (
    SELECT grain, period_start, segment, 'all' AS dimension, '' AS value FROM g
    UNION ALL
    SELECT grain, period_start, segment, 'source', source FROM g
    UNION ALL
    SELECT grain, period_start, segment, 'survey', survey_id FROM g
    UNION ALL
    SELECT grain, period_start, segment, 'theme',
           CASE WHEN themes IS NULL THEN 'no_comment' ELSE 'unmatched' END
    FROM g WHERE themes IS NULL OR cardinality(themes) = 0
    UNION ALL
    SELECT grain, period_start, segment, 'theme', t.theme
    FROM g, LATERAL (SELECT DISTINCT x FROM unnest(g.themes) AS x) AS t(theme)
    UNION ALL
    SELECT grain, period_start, segment, 'attribute:' || a.key, a.value
    FROM g, jsonb_each_text(attributes) AS a
)
INSERT INTO scoring.figures
    (grain, dimension, value, period_start, promoters, passives, detractors)
SELECT grain, dimension, value, period_start,
       count(*) FILTER (WHERE segment = 'promoter'),
       count(*) FILTER (WHERE segment = 'passive'),
       count(*) FILTER (WHERE segment = 'detractor')
FROM b
GROUP BY grain, dimension, value, period_start
"""


def downgrade() -> None:
    op.drop_index("ix_scoring_responses_responded_at", table_name="responses", schema="scoring")
    op.drop_table("figures", schema="scoring")
