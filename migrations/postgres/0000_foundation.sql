CREATE TABLE "connections" (
	"community_id" text PRIMARY KEY NOT NULL,
	"api_key_ciphertext" text NOT NULL,
	"key_hint" text NOT NULL,
	"status" text NOT NULL,
	"account_json" text,
	"credential_id" text NOT NULL,
	"created_at" text NOT NULL,
	"updated_at" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "deliveries" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "deliveries_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"id" text NOT NULL,
	"community_id" text NOT NULL,
	"event_id" text NOT NULL,
	"event_type" text NOT NULL,
	"member_id" text NOT NULL,
	"member_email" text NOT NULL,
	"event_time" bigint NOT NULL,
	"status" text NOT NULL,
	"attempts" bigint DEFAULT 0 NOT NULL,
	"last_error" text,
	"kit_requests" bigint DEFAULT 0 NOT NULL,
	"steps" text DEFAULT '[]' NOT NULL,
	"next_attempt_at" bigint NOT NULL,
	"lease_owner" text,
	"lease_until" bigint,
	"received_at" bigint NOT NULL,
	"created_at" text NOT NULL,
	"updated_at" text NOT NULL,
	"priority" bigint DEFAULT 0 NOT NULL,
	"sync_id" text
);
--> statement-breakpoint
CREATE TABLE "events" (
	"community_id" text NOT NULL,
	"id" text NOT NULL,
	"type" text NOT NULL,
	"member_id" text NOT NULL,
	"member_email" text NOT NULL,
	"event_time" bigint NOT NULL,
	"payload" text NOT NULL,
	"received_at" bigint NOT NULL,
	CONSTRAINT "events_pk" PRIMARY KEY("community_id","id")
);
--> statement-breakpoint
CREATE TABLE "kit_budget_blocks" (
	"credential_id" text PRIMARY KEY NOT NULL,
	"until" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "kit_budget_ledger" (
	"id" text PRIMARY KEY NOT NULL,
	"credential_id" text NOT NULL,
	"taken_at" bigint NOT NULL,
	"frees_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "kit_subscribers" (
	"community_id" text NOT NULL,
	"credential_id" text NOT NULL,
	"member_id" text NOT NULL,
	"email" text NOT NULL,
	"subscriber_id" bigint NOT NULL,
	"first_name" text,
	"fields" text NOT NULL,
	"updated_at" bigint NOT NULL,
	CONSTRAINT "kit_subscribers_pk" PRIMARY KEY("community_id","credential_id","member_id")
);
--> statement-breakpoint
CREATE TABLE "mappings" (
	"community_id" text PRIMARY KEY NOT NULL,
	"document" text NOT NULL,
	"updated_at" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ordering_marks" (
	"community_id" text NOT NULL,
	"scope" text NOT NULL,
	"event_time" bigint NOT NULL,
	"event_id" text NOT NULL,
	CONSTRAINT "ordering_marks_pk" PRIMARY KEY("community_id","scope")
);
--> statement-breakpoint
CREATE TABLE "syncs" (
	"id" text PRIMARY KEY NOT NULL,
	"community_id" text NOT NULL,
	"status" text NOT NULL,
	"format" text NOT NULL,
	"started_at" bigint NOT NULL,
	"total" bigint DEFAULT 0 NOT NULL,
	"refused" bigint DEFAULT 0 NOT NULL,
	"refused_examples" text DEFAULT '[]' NOT NULL,
	"done" bigint,
	"failed" bigint,
	"skipped" bigint,
	"kit_requests" bigint,
	"finished_at" bigint,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE INDEX "connections_credential_idx" ON "connections" USING btree ("credential_id");--> statement-breakpoint
CREATE UNIQUE INDEX "deliveries_id_idx" ON "deliveries" USING btree ("id");--> statement-breakpoint
CREATE UNIQUE INDEX "deliveries_event_idx" ON "deliveries" USING btree ("community_id","event_id");--> statement-breakpoint
CREATE INDEX "deliveries_ready_idx" ON "deliveries" USING btree ("next_attempt_at","seq") WHERE "deliveries"."status" IN ('pending', 'retrying');--> statement-breakpoint
CREATE INDEX "deliveries_finished_idx" ON "deliveries" USING btree ("updated_at") WHERE "deliveries"."status" IN ('succeeded', 'failed', 'skipped');--> statement-breakpoint
CREATE INDEX "deliveries_claim_idx" ON "deliveries" USING btree ("priority","next_attempt_at","seq","community_id") WHERE "deliveries"."status" IN ('pending', 'retrying');--> statement-breakpoint
CREATE INDEX "deliveries_sync_idx" ON "deliveries" USING btree ("sync_id","status") WHERE "deliveries"."sync_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "deliveries_member_idx" ON "deliveries" USING btree ("community_id","member_id","event_time");--> statement-breakpoint
CREATE INDEX "deliveries_community_seq_idx" ON "deliveries" USING btree ("community_id","seq");--> statement-breakpoint
CREATE INDEX "kit_budget_ledger_credential_idx" ON "kit_budget_ledger" USING btree ("credential_id","frees_at");--> statement-breakpoint
CREATE INDEX "syncs_community_idx" ON "syncs" USING btree ("community_id","started_at");