DROP INDEX "deliveries_claim_idx";--> statement-breakpoint
ALTER TABLE "kit_budget_blocks" ADD COLUMN "strikes" bigint DEFAULT 1 NOT NULL;--> statement-breakpoint
CREATE INDEX "deliveries_claim_idx" ON "deliveries" USING btree ("community_id","priority","next_attempt_at","seq") WHERE "deliveries"."status" IN ('pending', 'retrying');