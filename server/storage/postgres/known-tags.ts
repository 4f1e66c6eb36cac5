/** The tag ids every instance learnt from Kit, by credential and lower-cased name. */
import type pg from 'pg'
import type { KnownTagRepository } from '../../core/storage.ts'

export class PgKnownTags implements KnownTagRepository {
  constructor(private readonly pool: pg.Pool) {}

  async remember(credentialId: string, name: string, tagId: number, now: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO kit_tags (credential_id, name, tag_id, learnt_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (credential_id, name) DO UPDATE SET tag_id = excluded.tag_id, learnt_at = excluded.learnt_at`,
      [credentialId, name, tagId, now],
    )
  }

  async find(credentialId: string, name: string, since: number): Promise<number | null> {
    const { rows } = await this.pool.query<{ tag_id: string }>(
      'SELECT tag_id FROM kit_tags WHERE credential_id = $1 AND name = $2 AND learnt_at >= $3',
      [credentialId, name, since],
    )
    return rows[0] ? Number(rows[0].tag_id) : null
  }
}
