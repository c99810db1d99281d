using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// A decoder's label words, read as continuations of the prompt by the causal-LM head: a word scores the sum (or,
/// length-normalized, the mean) of its tokens' log-probabilities given the prompt and its earlier tokens; training is
/// the causal-LM loss of the true word's tokens (prompt tokens are not targets).
/// </summary>
internal sealed class ContinuationScorer : LabelWordScorer
{
    private readonly bool _lengthNormalized;
    private readonly int[][] _continuations;
    private readonly int[] _continuationOfWord;

    public ContinuationScorer(int[][] labelTokens, bool lengthNormalized)
        : base(labelTokens)
    {
        _lengthNormalized = lengthNormalized;
        (_continuations, _continuationOfWord) = Plan(labelTokens);
    }

    /// <summary>
    /// How training batches are padded; both sides give the same losses (positions count real tokens only). Scoring
    /// lays out each prompt and its continuations itself (see <see cref="TreeHidden"/>).
    /// </summary>
    public PaddingSide Padding { get; set; } = PaddingSide.Right;

    /// <summary>A decoder reads the label word after the prompt, so the prompt leaves room for its longest continuation.</summary>
    public override int TokensAfterPrompt => _continuations.Max(c => c.Length);

    public override double[][] Score(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var classes = LabelTokens.Length;
        var scores = new double[rows.Count][];
        var picked = PickedLogProbabilities(model, rows, padTokenId).data<float>().ToArray();
        var p = 0;
        for (var r = 0; r < rows.Count; r++)
        {
            scores[r] = new double[classes];
            for (var k = 0; k < classes; k++)
            {
                double sum = 0;
                for (var j = 0; j < LabelTokens[k].Length; j++)
                {
                    sum += picked[p++];
                }

                scores[r][k] = _lengthNormalized ? sum / LabelTokens[k].Length : sum;
            }
        }

        return scores;
    }

    public override Tensor ScoreTensor(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var classes = LabelTokens.Length;
        var picked = PickedLogProbabilities(model, rows, padTokenId);                     // (N)
        // Entry n of picked belongs to row r, class k, in the order PickedLogProbabilities lays out.
        var owner = new List<long>();
        for (var r = 0; r < rows.Count; r++)
        {
            for (var k = 0; k < classes; k++)
            {
                owner.AddRange(Enumerable.Repeat((long)((r * classes) + k), LabelTokens[k].Length));
            }
        }

        var sums = zeros(rows.Count * classes).index_add(0, tensor(owner.ToArray()), picked, 1).view(rows.Count, classes); // (B, K)
        return _lengthNormalized ? sums / tensor(LabelTokens.Select(t => (float)t.Length).ToArray()) : sums;
    }

    /// <summary>
    /// The log-probability (float32) of every label-word token given the prompt and the word's earlier tokens, for row
    /// r, class k, token j in that order: (N), N = rows × the classes' token counts.
    /// </summary>
    private Tensor PickedLogProbabilities(LanguageModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var classes = LabelTokens.Length;
        // One sequence per row: the prompt, then every continuation (see TreeHidden); all words sharing a continuation are
        // read off the same positions. Row r, continuation c: word token 0 is predicted at the prompt's scored position,
        // token j ≥ 1 at the continuation's token j − 1.
        var continuations = _continuations.Length;
        var decoder = model as Gpt2LMHeadModel
            ?? throw new NotSupportedException($"Prompt scoring of decoders supports GPT-2 language models, not {model.GetType().Name}.");
        var (states, starts) = TreeHidden(decoder, rows, padTokenId);
        var lmHead = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var gatherRows = new List<long>();
        var gatherColumns = new List<long>();
        var firstGathered = new int[rows.Count * continuations];
        for (var r = 0; r < rows.Count; r++)
        {
            for (var c = 0; c < continuations; c++)
            {
                firstGathered[r * continuations + c] = gatherRows.Count;
                gatherRows.Add(r);
                gatherColumns.Add(rows[r].Position);
                for (var j = 0; j < _continuations[c].Length; j++)
                {
                    gatherRows.Add(r);
                    gatherColumns.Add(starts[r][c] + j);
                }
            }
        }

        var logits = model.PredictTokens(states[tensor(gatherRows.ToArray()), tensor(gatherColumns.ToArray())]); // (N, V)
        var logSoftmax = logits.to(ScalarType.Float32).log_softmax(-1);
        var pickRows = new List<long>();
        var pickTokens = new List<long>();
        for (var r = 0; r < rows.Count; r++)
        {
            for (var k = 0; k < classes; k++)
            {
                var first = firstGathered[r * continuations + _continuationOfWord[k]];
                for (var j = 0; j < LabelTokens[k].Length; j++)
                {
                    pickRows.Add(first + j);
                    pickTokens.Add(LabelTokens[k][j]);
                }
            }
        }

        var picked = logSoftmax[tensor(pickRows.ToArray()), tensor(pickTokens.ToArray())];
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, lmHead);
        return picked;
    }

    public override Tensor Loss(LanguageModel model, IReadOnlyList<PromptRow> rows, long[] labels, int padTokenId)
    {
        // Teacher forcing: the prompt then the true word but its last token; token j of the word is predicted at
        // position (end of prompt + j).
        var words = labels.Select(y => LabelTokens[y]).ToArray();
        var states = Hidden(model, [.. rows.Select((r, i) => (int[])[.. r.Ids, .. words[i][..^1]])], padTokenId, Padding, out var columnOffsets);
        var lmHead = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var rowIndex = new List<long>();
        var columns = new List<long>();
        var targets = new List<long>();
        for (var i = 0; i < rows.Count; i++)
        {
            for (var j = 0; j < words[i].Length; j++)
            {
                rowIndex.Add(i);
                columns.Add(columnOffsets[i] + rows[i].Position + j);
                targets.Add(words[i][j]);
            }
        }

        var logits = model.PredictTokens(states[tensor(rowIndex.ToArray()), tensor(columns.ToArray())]); // (N, V)
        var result = nn.functional.cross_entropy(logits.to(ScalarType.Float32), tensor(targets.ToArray())); // float32 for the softmax and the loss, also when the model runs in bfloat16 (mixed-precision training)
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, lmHead);
        return result;
    }

    /// <summary>
    /// A decoder's final hidden states (B, T, H) for prompts followed by every continuation in one sequence per row:
    /// each continuation token attends to the prompt and to its own earlier tokens, at the position it would have right
    /// after the prompt, so the scores equal those of one sequence per continuation while the prompt is computed once.
    /// Right-padded; <c>Starts[r][c]</c> is the column of continuation c's first token in row r.
    /// </summary>
    private (Tensor States, int[][] Starts) TreeHidden(Gpt2LMHeadModel model, IReadOnlyList<PromptRow> rows, int padTokenId)
    {
        var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
        var tail = _continuations.Sum(c => c.Length);
        var width = rows.Max(r => r.Ids.Length) + tail;
        var batch = rows.Count;
        var ids = new long[batch * width];
        var positions = new long[batch * width];
        var allowed = new bool[batch * width * width];
        var starts = new int[batch][];
        Array.Fill(ids, (long)padTokenId);
        for (var r = 0; r < batch; r++)
        {
            var prompt = rows[r].Ids;
            var row = r * width;
            var square = r * width * width;
            for (var i = 0; i < prompt.Length; i++)
            {
                ids[row + i] = prompt[i];
                positions[row + i] = i;
                allowed.AsSpan(square + (i * width), i + 1).Fill(true);                 // causal over the prompt
            }

            starts[r] = new int[_continuations.Length];
            var column = prompt.Length;
            for (var c = 0; c < _continuations.Length; c++)
            {
                starts[r][c] = column;
                for (var j = 0; j < _continuations[c].Length; j++)
                {
                    var query = column + j;
                    ids[row + query] = _continuations[c][j];
                    positions[row + query] = prompt.Length + j;
                    allowed.AsSpan(square + (query * width), prompt.Length).Fill(true);          // the whole prompt
                    allowed.AsSpan(square + (query * width) + column, j + 1).Fill(true);         // its own earlier tokens
                }

                column += _continuations[c].Length;
            }

            for (var query = column; query < width; query++)
            {
                allowed[square + (query * width)] = true;   // padding: any finite row, never read
            }
        }

        var idsTensor = tensor(ids, [batch, width]);
        var positionsTensor = tensor(positions, [batch, width]);
        var allowedTensor = tensor(allowed, [batch, width, width]);
        TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
        TransformerTelemetry.CountBatch(rows.Sum(r => (long)r.Ids.Length + tail), (long)batch * width);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var states = model.TreeHiddenStates(idsTensor, positionsTensor, allowedTensor);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return (states, starts);
    }

    /// <summary>
    /// What a decoder must feed after the prompt to score every word: the maximal distinct word beginnings (each word
    /// but its last token). A word is read off the first continuation it begins; with single-token words the only
    /// continuation is empty, so one forward pass scores them all.
    /// </summary>
    private static (int[][] Continuations, int[] ContinuationOfWord) Plan(int[][] words)
    {
        var beginnings = words.Select(w => w[..^1]).ToList();
        var maximal = beginnings
            .Where((b, i) => !beginnings.Where((other, j) => j != i && other.Length > b.Length && other.AsSpan(0, b.Length).SequenceEqual(b)).Any())
            .DistinctBy(b => string.Join(",", b))
            .ToArray();
        var ofWord = beginnings.Select(b => Array.FindIndex(maximal, c => c.Length >= b.Length && c.AsSpan(0, b.Length).SequenceEqual(b))).ToArray();
        return (maximal, ofWord);
    }
}
