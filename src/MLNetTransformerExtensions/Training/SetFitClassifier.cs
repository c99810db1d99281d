using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// A SetFit classifier (Tunstall et al. 2022): a sentence encoder, possibly fine-tuned contrastively
/// (<see cref="ContrastiveTuner"/>), and a logistic-regression head on its embeddings, softmax(W·e + b). Saved as the
/// encoder's sentence-transformers folder plus the head in <see cref="HeadFile"/>.
/// </summary>
internal sealed class SetFitClassifier : IDisposable
{
    /// <summary>The head's file beside the encoder's (as SetFit keeps <c>model_head.pkl</c> beside the body).</summary>
    internal const string HeadFile = "model_head.json";

    /// <param name="encoder">The encoder, which this classifier then owns.</param>
    /// <param name="labels">Class names, in class-index order.</param>
    /// <param name="weights">The head's weights, one row of <see cref="SentenceEncoder.Dimension"/> values per class.</param>
    /// <param name="biases">The head's bias per class.</param>
    public SetFitClassifier(SentenceEncoder encoder, IReadOnlyList<string> labels, float[][] weights, float[] biases)
    {
        if (weights.Length != labels.Count || biases.Length != labels.Count || weights.Any(w => w.Length != encoder.Dimension))
        {
            throw new ArgumentException(
                $"The head has {weights.Length} weight rows of [{string.Join(", ", weights.Select(w => w.Length).Distinct())}] values and {biases.Length} biases; " +
                $"{labels.Count} classes on {encoder.Dimension}-value embeddings need {labels.Count} rows of {encoder.Dimension} and {labels.Count} biases.");
        }

        Encoder = encoder;
        Labels = labels;
        Weights = weights;
        Biases = biases;
    }

    public SentenceEncoder Encoder { get; }

    public IReadOnlyList<string> Labels { get; }

    public float[][] Weights { get; }

    public float[] Biases { get; }

    /// <summary>Class probabilities: the head's softmax over each text's embedding.</summary>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts, int batchSize) =>
        [.. Encoder.Embed(texts, batchSize).Select(Probabilities)];

    /// <summary>This head's class probabilities for one embedding.</summary>
    public float[] Probabilities(float[] embedding) => Probabilities(Weights, Biases, embedding);

    /// <summary>softmax(W·e + b), computed in double so that large margins neither overflow nor lose the small classes.</summary>
    public static float[] Probabilities(float[][] weights, float[] biases, float[] embedding)
    {
        var logits = new double[weights.Length];
        for (var k = 0; k < logits.Length; k++)
        {
            double sum = biases[k];
            var row = weights[k];
            for (var d = 0; d < row.Length; d++)
            {
                sum += (double)row[d] * embedding[d];
            }

            logits[k] = sum;
        }

        var max = logits.Max();
        var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
        var total = exp.Sum();
        return [.. exp.Select(e => (float)(e / total))];
    }

    public void Save(string folder)
    {
        Encoder.Save(folder);
        var head = new JsonObject
        {
            ["labels"] = new JsonArray([.. Labels.Select(l => (JsonNode)JsonValue.Create(l))]),
            ["weight"] = new JsonArray([.. Weights.Select(row => (JsonNode)new JsonArray([.. row.Select(v => (JsonNode)JsonValue.Create(v))]))]),
            ["bias"] = new JsonArray([.. Biases.Select(v => (JsonNode)JsonValue.Create(v))]),
        };
        File.WriteAllText(Path.Combine(folder, HeadFile), head.ToJsonString());
    }

    /// <exception cref="InvalidDataException">The head file is missing or malformed, or the encoder folder is.</exception>
    public static SetFitClassifier Load(string folder)
    {
        var path = Path.Combine(folder, HeadFile);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"'{folder}' has no SetFit head ({HeadFile}).");
        }

        string[] labels;
        float[][] weights;
        float[] biases;
        try
        {
            var head = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            labels = [.. head["labels"]!.AsArray().Select(l => l!.GetValue<string>())];
            weights = [.. head["weight"]!.AsArray().Select(row => row!.AsArray().Select(v => v!.GetValue<float>()).ToArray())];
            biases = [.. head["bias"]!.AsArray().Select(v => v!.GetValue<float>())];
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new InvalidDataException($"'{path}' is not a SetFit head (labels, weight, bias): {e.Message}", e);
        }

        var encoder = SentenceEncoder.FromFolder(folder);
        try
        {
            return new SetFitClassifier(encoder, labels, weights, biases);
        }
        catch (ArgumentException e)
        {
            encoder.Dispose();
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{path}' does not fit the encoder beside it: {e.Message}"), e);
        }
    }

    public void Dispose() => Encoder.Dispose();
}
