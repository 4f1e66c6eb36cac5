CREATE TABLE "oauth_installs" (
	"code_hash" text PRIMARY KEY NOT NULL,
	"return_to" text NOT NULL,
	"created_at" bigint NOT NULL,
	"expires_at" bigint NOT NULL,
	"used_at" bigint
);
--> statement-breakpoint
CREATE TABLE "oauth_states" (
	"state_hash" text PRIMARY KEY NOT NULL,
	"community_id" text NOT NULL,
	"session_sub" text NOT NULL,
	"verifier_ciphertext" text NOT NULL,
	"return_to" text,
	"created_at" bigint NOT NULL,
	"expires_at" bigint NOT NULL,
	"used_at" bigint
);
--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "kind" text DEFAULT 'api_key' NOT NULL;--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "refresh_token_ciphertext" text;--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "token_expires_at" bigint;--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "token_refresh_at" bigint;--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "refresh_lease_until" bigint;--> statement-breakpoint
CREATE INDEX "oauth_installs_expires_idx" ON "oauth_installs" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "oauth_states_community_idx" ON "oauth_states" USING btree ("community_id","session_sub");--> statement-breakpoint
CREATE INDEX "oauth_states_expires_idx" ON "oauth_states" USING btree ("expires_at");