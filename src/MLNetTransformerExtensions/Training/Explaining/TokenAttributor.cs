using MLNetTransformerExtensions.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Token attributions on the input word embeddings (<see cref="AttributionMethod"/>): a forward hook on the network's
/// word-embedding table replaces its output with points on the path from the baseline to the input, so every model
/// family and strategy is explained through its own forward pass, as Captum's layer integrated gradients do.
/// </summary>
internal static class TokenAttributor
{
    /// <summary>Path points per forward pass: bounds the memory of a long text's steps.</summary>
    private const int PointsPerPass = 16;

    /// <summary>Explains one row; each row is computed alone, so a row's attributions do not depend on the others.</summary>
    /// <exception cref="ArgumentException">The options name a class the classifier does not have.</exception>
    public static TokenAttribution Explain(IExplainableClassifier classifier, string text, string? secondText, TokenAttributionOptions options)
    {
        options.Validate();
        text ??= string.Empty;
        var labels = classifier.Labels;
        var probabilities = classifier.PredictProbabilities([text], secondText is null ? null : [secondText], 1)[0];
        var predicted = Array.IndexOf(probabilities, probabilities.Max());
        var target = predicted;
        if (options.Label is not null)
        {
            target = labels.ToList().IndexOf(options.Label);
            if (target < 0)
            {
                throw new ArgumentException($"'{options.Label}' is not a class of this classifier; its classes are {string.Join(", ", labels.Select(l => $"'{l}'"))}.", nameof(options));
            }
        }

        var ids = classifier.ExplainedTokens(text, secondText);
        var network = classifier.Network;
        var embeddings = WordEmbeddings(network);
        var wasTraining = network.training;
        network.eval(); // dropout off: the same text gets the same attributions
        try
        {
            using var scope = NewDisposeScope();
            var input = embeddings.weight!.index_select(0, tensor(ids.Select(i => (long)i).ToArray())).detach(); // (T, H)
            var attributed = tensor(ids.Select(i => IsSpecial(classifier, i) ? 0f : 1f).ToArray()).unsqueeze(1);  // (T, 1)
            var kept = input * (1 - attributed);      // the baseline: special tokens as they are, other words zero
            var moved = input * attributed;           // input − baseline

            var (score, baselineScore) = Endpoints(classifier, embeddings, text, secondText, kept, moved, target);
            double[] attributions;
            double? completenessError = null;
            var steps = 1;
            if (options.Method == AttributionMethod.GradientTimesInput)
            {
                var gradient = PathGradients(classifier, embeddings, text, secondText, kept, moved, [1.0], target); // (T, H)
                attributions = ToDoubles((moved * gradient).sum(-1));
            }
            else
            {
                // Midpoint rule: alpha_k = (k + 1/2) / m.
                steps = options.Steps;
                var gradientSum = zeros_like(input);
                for (var start = 0; start < steps; start += PointsPerPass)
                {
                    using var pass = NewDisposeScope();
                    var alphas = Enumerable.Range(start, Math.Min(PointsPerPass, steps - start)).Select(k => (k + 0.5) / steps).ToArray();
                    gradientSum.add_(PathGradients(classifier, embeddings, text, secondText, kept, moved, alphas, target));
                }

                attributions = ToDoubles((moved * gradientSum / steps).sum(-1));
                completenessError = attributions.Sum() - (score - baselineScore);
            }

            var tokens = classifier.Tokenizer.ConvertIdsToTokens(ids);
            return new TokenAttribution(tokens, attributions, labels[predicted], labels[target], options.Method, steps, score, baselineScore, completenessError);
        }
        finally
        {
            if (wasTraining)
            {
                network.train();
            }
        }
    }

    /// <summary>The class score at the input (alpha 1) and at the baseline (alpha 0).</summary>
    private static (double Score, double Baseline) Endpoints(
        IExplainableClassifier classifier, Embedding embeddings, string text, string? secondText, Tensor kept, Tensor moved, int target)
    {
        using var _ = no_grad();
        var points = stack([kept + moved, kept]);                                       // (2, T, H)
        var scores = WithEmbeddings(embeddings, points, () => classifier.ClassScores(text, secondText, 2));
        var column = scores.select(1, target).to(ScalarType.Float64).data<double>().ToArray();
        return (column[0], column[1]);
    }

    /// <summary>The summed gradient (T, H) of the class score at the path points baseline + alpha · (input − baseline).</summary>
    private static Tensor PathGradients(
        IExplainableClassifier classifier, Embedding embeddings, string text, string? secondText, Tensor kept, Tensor moved, double[] alphas, int target)
    {
        var alpha = tensor(alphas.Select(a => (float)a).ToArray()).view(-1, 1, 1);         // (S, 1, 1)
        var points = (kept.unsqueeze(0) + (alpha * moved.unsqueeze(0))).detach().requires_grad_(true); // (S, T, H)
        var scores = WithEmbeddings(embeddings, points, () => classifier.ClassScores(text, secondText, alphas.Length));
        // torch.autograd.grad rather than backward: only the points' gradient is computed, and no weight's .grad is touched.
        var gradient = torch.autograd.grad([scores.select(1, target).sum()], [points])[0];      // (S, T, H)
        return gradient.sum(dim: 0);                                                            // (T, H)
    }

    /// <summary>Runs <paramref name="forward"/> with the word embeddings of the row's first T columns replaced by <paramref name="points"/>.</summary>
    private static Tensor WithEmbeddings(Embedding embeddings, Tensor points, Func<Tensor> forward)
    {
        var length = points.shape[1];
        // A decoder prompt scores label words after the row; those columns keep their own embeddings.
        var hook = embeddings.register_forward_hook((_, _, output) =>
            output.shape[1] == length ? points : cat([points, output.narrow(1, length, output.shape[1] - length)], 1));
        try
        {
            return forward();
        }
        finally
        {
            hook.remove();
        }
    }

    private static Embedding WordEmbeddings(nn.Module network)
    {
        foreach (var (name, module) in network.named_modules())
        {
            if (module is Embedding embedding && (name.EndsWith("word_embeddings", StringComparison.Ordinal) || name.EndsWith("wte", StringComparison.Ordinal)))
            {
                return embedding;
            }
        }

        throw new NotSupportedException($"The {network.GetType().Name} network has no word-embedding table (word_embeddings or wte) to attribute on.");
    }

    private static bool IsSpecial(IExplainableClassifier classifier, int id)
    {
        var t = classifier.Tokenizer;
        return id == t.ClsTokenId || id == t.SepTokenId || id == t.BosTokenId || id == t.EosTokenId || id == t.MaskTokenId || id == t.PadTokenId;
    }

    private static double[] ToDoubles(Tensor values) => values.to(ScalarType.Float64).data<double>().ToArray();
}
