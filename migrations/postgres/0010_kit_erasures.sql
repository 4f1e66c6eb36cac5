CREATE TABLE "kit_erasures" (
	"community_id" text NOT NULL,
	"member_id" text NOT NULL,
	"subscriber_id" bigint NOT NULL,
	"erased_at" bigint NOT NULL,
	"done_at" bigint,
	CONSTRAINT "kit_erasures_pk" PRIMARY KEY("community_id","member_id","subscriber_id")
);
--> statement-breakpoint
CREATE INDEX "kit_erasures_community_idx" ON "kit_erasures" USING btree ("community_id","erased_at");--> statement-breakpoint
CREATE INDEX "deliveries_deleted_idx" ON "deliveries" USING btree ("community_id","member_id","event_time") WHERE "deliveries"."event_type" = 'user.deleted';