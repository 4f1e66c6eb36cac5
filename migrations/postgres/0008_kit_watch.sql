CREATE TABLE "kit_member_states" (
	"community_id" text NOT NULL,
	"credential_id" text NOT NULL,
	"member_id" text NOT NULL,
	"subscriber_id" bigint NOT NULL,
	"state" text NOT NULL,
	"state_learned_at" bigint NOT NULL,
	"first_name" text,
	"email" text NOT NULL,
	"updated_at" bigint NOT NULL,
	CONSTRAINT "kit_member_states_pk" PRIMARY KEY("community_id","credential_id","member_id")
);
--> statement-breakpoint
CREATE TABLE "kit_watch_polls" (
	"community_id" text PRIMARY KEY NOT NULL,
	"credential_id" text NOT NULL,
	"next_poll_at" bigint NOT NULL,
	"polled_from" bigint
);
--> statement-breakpoint
CREATE TABLE "kit_webhooks" (
	"token" text PRIMARY KEY NOT NULL,
	"community_id" text NOT NULL,
	"credential_id" text NOT NULL,
	"event" text NOT NULL,
	"kit_webhook_id" bigint,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE INDEX "kit_member_states_subscriber_idx" ON "kit_member_states" USING btree ("community_id","credential_id","subscriber_id");--> statement-breakpoint
CREATE INDEX "kit_webhooks_community_idx" ON "kit_webhooks" USING btree ("community_id");