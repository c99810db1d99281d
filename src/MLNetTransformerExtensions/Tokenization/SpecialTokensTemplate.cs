namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// One element of a post-processing template: either the first (<c>A</c>) or second (<c>B</c>) sequence, or
/// fixed special-token ids; each with its token type id (HuggingFace's TemplateProcessing pieces).
/// </summary>
internal sealed record TemplatePiece(int Sequence, int[] SpecialIds, int TypeId)
{
    public const int SequenceA = 0;
    public const int SequenceB = 1;
    public const int Special = -1;

    public static TemplatePiece A(int typeId = 0) => new(SequenceA, [], typeId);

    public static TemplatePiece B(int typeId) => new(SequenceB, [], typeId);

    public static TemplatePiece Ids(int typeId, params int[] ids) => new(Special, ids, typeId);
}

/// <summary>
/// Where special tokens go around one text or a pair (HuggingFace's <c>build_inputs_with_special_tokens</c> and
/// <c>create_token_type_ids_from_sequences</c>, or a tokenizer.json post-processor).
/// </summary>
internal sealed class SpecialTokensTemplate
{
    private readonly TemplatePiece[] _single;
    private readonly TemplatePiece[] _pair;

    public SpecialTokensTemplate(TemplatePiece[] single, TemplatePiece[] pair)
    {
        _single = single;
        _pair = pair;
        SingleSpecialCount = single.Sum(p => p.SpecialIds.Length);
        PairSpecialCount = pair.Sum(p => p.SpecialIds.Length);
    }

    /// <summary>Number of special tokens around a single text.</summary>
    public int SingleSpecialCount { get; }

    /// <summary>Number of special tokens around a text pair.</summary>
    public int PairSpecialCount { get; }

    /// <summary>No special tokens: the sequences are concatenated (GPT-2).</summary>
    public static SpecialTokensTemplate None { get; } = new([TemplatePiece.A()], [TemplatePiece.A(), TemplatePiece.B(0)]);

    /// <summary>BERT: <c>[CLS] A [SEP]</c> and <c>[CLS] A [SEP] B [SEP]</c>, token type 1 from B on.</summary>
    public static SpecialTokensTemplate Bert(int cls, int sep) => new(
        [TemplatePiece.Ids(0, cls), TemplatePiece.A(), TemplatePiece.Ids(0, sep)],
        [TemplatePiece.Ids(0, cls), TemplatePiece.A(), TemplatePiece.Ids(0, sep), TemplatePiece.B(1), TemplatePiece.Ids(1, sep)]);

    /// <summary>RoBERTa: <c>&lt;s&gt; A &lt;/s&gt;</c> and <c>&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;</c>, token types all 0.</summary>
    public static SpecialTokensTemplate Roberta(int cls, int sep) => new(
        [TemplatePiece.Ids(0, cls), TemplatePiece.A(), TemplatePiece.Ids(0, sep)],
        [TemplatePiece.Ids(0, cls), TemplatePiece.A(), TemplatePiece.Ids(0, sep, sep), TemplatePiece.B(0), TemplatePiece.Ids(0, sep)]);

    /// <summary>T5: <c>A &lt;/s&gt;</c> and <c>A &lt;/s&gt; B &lt;/s&gt;</c>, no beginning-of-sequence token, token types all 0.</summary>
    public static SpecialTokensTemplate EosSuffixed(int eos) => new(
        [TemplatePiece.A(), TemplatePiece.Ids(0, eos)],
        [TemplatePiece.A(), TemplatePiece.Ids(0, eos), TemplatePiece.B(0), TemplatePiece.Ids(0, eos)]);

    /// <summary>GPT-2 with <c>add_bos_token</c>: <c>bos A</c> and <c>bos A bos B</c>.</summary>
    public static SpecialTokensTemplate BosPrefixed(int bos) => new(
        [TemplatePiece.Ids(0, bos), TemplatePiece.A()],
        [TemplatePiece.Ids(0, bos), TemplatePiece.A(), TemplatePiece.Ids(0, bos), TemplatePiece.B(0)]);

    /// <summary>Writes the template filled with <paramref name="first"/> (and <paramref name="second"/>) into fresh arrays.</summary>
    public (int[] Ids, int[] TypeIds) Build(ReadOnlySpan<int> first, ReadOnlySpan<int> second, bool isPair)
    {
        var pieces = isPair ? _pair : _single;
        var length = (isPair ? PairSpecialCount : SingleSpecialCount) + first.Length + (isPair ? second.Length : 0);
        var ids = new int[length];
        var typeIds = new int[length];
        var at = 0;
        foreach (var piece in pieces)
        {
            var source = piece.Sequence switch
            {
                TemplatePiece.SequenceA => first,
                TemplatePiece.SequenceB => second,
                _ => piece.SpecialIds,
            };
            source.CopyTo(ids.AsSpan(at));
            typeIds.AsSpan(at, source.Length).Fill(piece.TypeId);
            at += source.Length;
        }

        return (ids, typeIds);
    }
}
