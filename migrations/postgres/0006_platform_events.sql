CREATE TABLE "platform_events" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "platform_events_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"id" text NOT NULL,
	"community_id" text NOT NULL,
	"type" text NOT NULL,
	"member_id" text,
	"once_key" text,
	"body" text NOT NULL,
	"state" text NOT NULL,
	"attempts" bigint DEFAULT 0 NOT NULL,
	"last_error" text,
	"next_attempt_at" bigint NOT NULL,
	"give_up_at" bigint NOT NULL,
	"lease_owner" text,
	"lease_until" bigint,
	"observed_at" bigint NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"sent_at" bigint
);
--> statement-breakpoint
CREATE TABLE "platform_failures" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "platform_failures_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"community_id" text NOT NULL,
	"reason" text NOT NULL,
	"failed_at" bigint NOT NULL,
	"notice_id" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "platform_events_id_idx" ON "platform_events" USING btree ("id");--> statement-breakpoint
CREATE UNIQUE INDEX "platform_events_once_idx" ON "platform_events" USING btree ("community_id","once_key");--> statement-breakpoint
CREATE INDEX "platform_events_ready_idx" ON "platform_events" USING btree ("next_attempt_at","seq") WHERE "platform_events"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "platform_events_member_idx" ON "platform_events" USING btree ("community_id","member_id","seq");--> statement-breakpoint
CREATE INDEX "platform_events_community_idx" ON "platform_events" USING btree ("community_id","seq");--> statement-breakpoint
CREATE INDEX "platform_failures_unreported_idx" ON "platform_failures" USING btree ("community_id","seq") WHERE "platform_failures"."notice_id" IS NULL;