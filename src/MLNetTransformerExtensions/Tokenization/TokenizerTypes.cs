namespace MLNetTransformerExtensions.Tokenization;

/// <summary>The tokenizer families we read, named after the HuggingFace <c>model_type</c> they serve.</summary>
public enum TokenizerFamily
{
    /// <summary>WordPiece with BERT's basic tokenizer (<c>bert</c>, <c>distilbert</c>): <c>[CLS] a [SEP] b [SEP]</c>.</summary>
    Bert,

    /// <summary>Byte-level BPE with RoBERTa's template (<c>roberta</c>, <c>bart</c>): <c>&lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;</c>.</summary>
    Roberta,

    /// <summary>Byte-level BPE without added special tokens (<c>gpt2</c>), unless <c>add_bos_token</c> is set.</summary>
    Gpt2,

    /// <summary>
    /// SentencePiece unigram (<c>t5</c>, slow <c>T5Tokenizer</c> with <c>legacy</c> = true): <c>a &lt;/s&gt;</c> and
    /// <c>a &lt;/s&gt; b &lt;/s&gt;</c>, no beginning-of-sequence token, sentinels <c>&lt;extra_id_N&gt;</c>.
    /// </summary>
    T5,
}

/// <summary>Which end of a row receives the padding in <see cref="TransformerTokenizer.EncodeBatch"/>.</summary>
public enum PaddingSide
{
    /// <summary>Pads after the tokens (encoders, and decoders scored at their last real token).</summary>
    Right,

    /// <summary>Pads before the tokens, so every row's last real token sits in the last column (decoders).</summary>
    Left,
}

/// <summary>One encoded text or text pair, special tokens included; its attention mask is all ones.</summary>
/// <param name="InputIds">Token ids, special tokens included.</param>
/// <param name="TokenTypeIds">
/// Segment ids: for <see cref="TokenizerFamily.Bert"/> 0 over <c>[CLS] a [SEP]</c> and 1 over <c>b [SEP]</c>;
/// all zeros for RoBERTa and GPT-2, whose HuggingFace tokenizers return no token types.
/// </param>
/// <param name="Truncated">Whether tokens were removed to respect the maximum length.</param>
public sealed record EncodedText(int[] InputIds, int[] TokenTypeIds, bool Truncated)
{
    /// <summary>Number of tokens, special tokens included.</summary>
    public int Length => InputIds.Length;
}

/// <summary>
/// A padded batch in the row-major layout a <c>[BatchSize, SequenceLength]</c> int64 tensor takes directly:
/// element <c>(row, column)</c> is at <c>row * SequenceLength + column</c>.
/// </summary>
public sealed class EncodedBatch
{
    internal EncodedBatch(int batchSize, int sequenceLength, PaddingSide paddingSide)
    {
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        PaddingSide = paddingSide;
        InputIds = new long[batchSize * sequenceLength];
        AttentionMask = new long[batchSize * sequenceLength];
        TokenTypeIds = new long[batchSize * sequenceLength];
        Lengths = new int[batchSize];
        Truncated = new bool[batchSize];
    }

    /// <summary>Pads already-tokenized rows to the longest one: the one place padding is laid out.</summary>
    /// <param name="rows">Encoded rows.</param>
    /// <param name="padId">The padding token id.</param>
    /// <param name="side">Where padding goes.</param>
    /// <returns>The padded batch.</returns>
    public static EncodedBatch Pad(IReadOnlyList<EncodedText> rows, int padId, PaddingSide side = PaddingSide.Right)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var batch = Pad([.. rows.Select(r => r.InputIds)], [.. rows.Select(r => r.TokenTypeIds)], padId, side);
        for (var row = 0; row < rows.Count; row++)
        {
            batch.Truncated[row] = rows[row].Truncated;
        }

        return batch;
    }

    /// <summary>Pads token-id rows (and optional token-type rows) to the longest one.</summary>
    /// <param name="ids">Token ids per row.</param>
    /// <param name="typeIds">Token types per row, or null for zeros.</param>
    /// <param name="padId">The padding token id.</param>
    /// <param name="side">Where padding goes.</param>
    /// <returns>The padded batch.</returns>
    internal static EncodedBatch Pad(IReadOnlyList<int[]> ids, IReadOnlyList<int[]>? typeIds, int padId, PaddingSide side)
    {
        var longest = ids.Count == 0 ? 0 : ids.Max(r => r.Length);
        var batch = new EncodedBatch(ids.Count, longest, side);
        batch.InputIds.AsSpan().Fill(padId);
        for (var row = 0; row < ids.Count; row++)
        {
            var tokens = ids[row];
            var start = row * longest + (side == PaddingSide.Left ? longest - tokens.Length : 0);
            for (var i = 0; i < tokens.Length; i++)
            {
                batch.InputIds[start + i] = tokens[i];
                batch.TokenTypeIds[start + i] = typeIds is not null && i < typeIds[row].Length ? typeIds[row][i] : 0;
            }

            batch.AttentionMask.AsSpan(start, tokens.Length).Fill(1);
            batch.Lengths[row] = tokens.Length;
        }

        return batch;
    }

    /// <summary>Number of rows.</summary>
    public int BatchSize { get; }

    /// <summary>Columns per row: the longest row's token count (0 when every row is empty).</summary>
    public int SequenceLength { get; }

    /// <summary>Where the padding went.</summary>
    public PaddingSide PaddingSide { get; }

    /// <summary>Token ids, <c>[BatchSize * SequenceLength]</c>; padding holds the tokenizer's pad id.</summary>
    public long[] InputIds { get; }

    /// <summary>1 on real tokens, 0 on padding, <c>[BatchSize * SequenceLength]</c>.</summary>
    public long[] AttentionMask { get; }

    /// <summary>Segment ids as in <see cref="EncodedText.TokenTypeIds"/>, 0 on padding, <c>[BatchSize * SequenceLength]</c>.</summary>
    public long[] TokenTypeIds { get; }

    /// <summary>Real (unpadded) token count of each row.</summary>
    public int[] Lengths { get; }

    /// <summary>Whether each row was truncated to the maximum length.</summary>
    public bool[] Truncated { get; }

    /// <summary>Column of the first real token of <paramref name="row"/> (non-zero only with left padding).</summary>
    /// <param name="row">Row index.</param>
    public int FirstTokenColumn(int row) => PaddingSide == PaddingSide.Left ? SequenceLength - Lengths[row] : 0;

    /// <summary>Column of the last real token of <paramref name="row"/>, or -1 when the row is empty.</summary>
    /// <param name="row">Row index.</param>
    public int LastTokenColumn(int row) => Lengths[row] == 0 ? -1 : FirstTokenColumn(row) + Lengths[row] - 1;
}
