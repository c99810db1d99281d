using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Runtime;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>What loading a checkpoint into a model found, as HuggingFace reports it.</summary>
/// <param name="Source">The checkpoint's path.</param>
/// <param name="Missing">Model keys the checkpoint lacks (freshly initialised).</param>
/// <param name="Unexpected">Checkpoint keys the model does not use.</param>
/// <param name="Mismatched">Head keys whose stored shape differs from the model's (freshly initialised), e.g. another number of labels.</param>
public sealed record LoadReport(string Source, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> Mismatched)
{
    /// <summary>Whether every model weight came from the checkpoint.</summary>
    public bool IsComplete => Missing.Count == 0 && Mismatched.Count == 0;

    /// <summary>A summary like HuggingFace prints after <c>from_pretrained</c>.</summary>
    /// <returns>One line per kind of difference, or a line saying all weights were used.</returns>
    public override string ToString()
    {
        var lines = new List<string>();
        if (Missing.Count > 0)
        {
            lines.Add($"Newly initialised (not in {Source}): {string.Join(", ", Missing)}");
        }

        if (Mismatched.Count > 0)
        {
            lines.Add($"Newly initialised (another shape in {Source}): {string.Join(", ", Mismatched)}");
        }

        if (Unexpected.Count > 0)
        {
            lines.Add($"Unused weights of {Source}: {string.Join(", ", Unexpected)}");
        }

        return lines.Count == 0 ? $"All weights loaded from {Source}." : string.Join(Environment.NewLine, lines);
    }
}

/// <summary>Builds the model of a family and fills it from a state dict, mapping keys as HuggingFace does.</summary>
public static class TransformerModels
{
    /// <summary>A sequence classifier of the config's family, sized to its labels, with HuggingFace's initialisation.</summary>
    /// <param name="config">The config.</param>
    /// <returns>The new model (training mode).</returns>
    public static SequenceClassificationModel CreateForSequenceClassification(TransformerConfig config)
    {
        TorchRuntime.EnsureInitialized();
        return config.Family switch
        {
            ModelFamily.Bert => new BertForSequenceClassification(config),
            ModelFamily.Roberta => new RobertaForSequenceClassification(config),
            ModelFamily.DistilBert => new DistilBertForSequenceClassification(config),
            ModelFamily.Bart => new BartForSequenceClassification(config),
            ModelFamily.T5 => throw new NotSupportedException(
                "T5 has no classification head here: it classifies text-to-text, scoring each class's target string with its decoder (the prompt strategy of an encoder-decoder)."),
            _ => new Gpt2ForSequenceClassification(config),
        };
    }

    /// <summary>
    /// A language model of the config's family: masked-LM for encoders, causal-LM for GPT-2, and for encoder-decoders
    /// (BART, T5) a <see cref="ConditionalGenerationModel"/>.
    /// </summary>
    /// <param name="config">The config.</param>
    /// <returns>The new model (training mode).</returns>
    public static LanguageModel CreateForLanguageModeling(TransformerConfig config)
    {
        TorchRuntime.EnsureInitialized();
        if (config.Family == ModelFamily.Gpt2 && !config.TieWordEmbeddings)
        {
            throw new NotSupportedException("GPT-2 checkpoints with tie_word_embeddings = false (a separate lm_head) are not supported.");
        }

        return config.Family switch
        {
            ModelFamily.Bert => new BertForMaskedLM(config),
            ModelFamily.Roberta => new RobertaForMaskedLM(config),
            ModelFamily.DistilBert => new DistilBertForMaskedLM(config),
            ModelFamily.Bart => new BartForConditionalGeneration(config),
            ModelFamily.T5 => new T5ForConditionalGeneration(config),
            _ => new Gpt2LMHeadModel(config),
        };
    }

    /// <summary>
    /// Loads a HuggingFace folder as a sequence classifier sized by its config's labels. A checkpoint without a head,
    /// or a folder without weights, leaves the missing parts freshly initialised; the report says which.
    /// </summary>
    /// <param name="folder">A HuggingFace model folder.</param>
    /// <param name="report">What loading found, or null when the folder has no weights.</param>
    /// <returns>The model in evaluation mode.</returns>
    public static SequenceClassificationModel LoadForSequenceClassification(string folder, out LoadReport? report)
    {
        var model = CreateForSequenceClassification(TransformerConfig.FromFolder(folder));
        report = LoadFromFolder(model, folder);
        model.eval();
        return model;
    }

    /// <summary>Loads a HuggingFace folder as a language model (masked-LM head for encoders, causal-LM head for GPT-2).</summary>
    /// <param name="folder">A HuggingFace model folder.</param>
    /// <param name="report">What loading found, or null when the folder has no weights.</param>
    /// <returns>The model in evaluation mode.</returns>
    public static LanguageModel LoadForLanguageModeling(string folder, out LoadReport? report)
    {
        var model = CreateForLanguageModeling(TransformerConfig.FromFolder(folder));
        report = LoadFromFolder(model, folder);
        model.eval();
        return model;
    }

    /// <summary>Fills a model from the weights of a folder, if it has any.</summary>
    /// <param name="model">The model.</param>
    /// <param name="folder">A HuggingFace model folder.</param>
    /// <returns>The report, or null when the folder has no weight files.</returns>
    public static LoadReport? LoadFromFolder(TransformerModel model, string folder)
    {
        if (CheckpointFiles.FindWeights(folder) is null)
        {
            return null;
        }

        var state = CheckpointFiles.LoadStateDict(folder, out var files);
        try
        {
            return LoadWeights(model, state, folder, key => files[key], Path.Combine(folder, CheckpointFiles.ConfigName));
        }
        finally
        {
            foreach (var tensor in state.Values)
            {
                tensor.Dispose();
            }
        }
    }

    /// <summary>
    /// Copies a checkpoint's tensors into a model. Keys match by name, with the base-model prefix added or removed
    /// (a bare <c>BertModel</c> checkpoint into a classifier, or the reverse); tied and known non-persistent buffers are
    /// skipped. Head weights that are missing or of another shape keep their fresh initialisation and are reported;
    /// a body weight of the wrong shape is an error.
    /// </summary>
    /// <param name="model">The model to fill.</param>
    /// <param name="stateDict">The checkpoint's tensors by HuggingFace key.</param>
    /// <param name="source">The checkpoint's path, for messages.</param>
    /// <returns>What was missing, unexpected or mismatched.</returns>
    /// <exception cref="InvalidDataException">A body tensor's shape differs from the model's config.</exception>
    public static LoadReport LoadWeights(TransformerModel model, IReadOnlyDictionary<string, Tensor> stateDict, string source) =>
        LoadWeights(model, stateDict, source, _ => source, "config.json");

    /// <summary>As the public overload; <paramref name="fileOf"/> names the file a tensor came from, so a wrong shape names it.</summary>
    internal static LoadReport LoadWeights(TransformerModel model, IReadOnlyDictionary<string, Tensor> stateDict, string source,
        Func<string, string> fileOf, string configPath)
    {
        var parameters = model.state_dict();
        var prefix = model.BasePrefix + ".";
        var tied = model.TiedWeights.Select(t => t.Tied).ToHashSet(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        var mismatched = new List<string>();

        using var _ = no_grad();
        foreach (var (name, target) in parameters)
        {
            var key = stateDict.ContainsKey(name) ? name
                : name.StartsWith(prefix, StringComparison.Ordinal) && stateDict.ContainsKey(name[prefix.Length..]) ? name[prefix.Length..]
                : null;
            if (key is null)
            {
                missing.Add(name);
                continue;
            }

            used.Add(key);
            var tensor = stateDict[key];
            if (!tensor.shape.SequenceEqual(target.shape))
            {
                var shapes = $"Tensor '{key}' in '{fileOf(key)}' has shape [{string.Join(", ", tensor.shape)}], but the model built from '{configPath}' expects [{string.Join(", ", target.shape)}]";
                if (model.HeadPrefixes.Any(h => name.StartsWith(h, StringComparison.Ordinal)))
                {
                    mismatched.Add(name);
                    continue;
                }

                throw new InvalidDataException($"{shapes}. The weights do not belong to this config: use the config.json saved with them.");
            }

            target.copy_(tensor); // copy_ casts to the parameter's dtype; a converted temporary would outlive this call
        }

        var unexpected = stateDict.Keys
            .Where(k => !used.Contains(k) && !tied.Contains(k) && !IsNonPersistentBuffer(k))
            .Where(k => !(tied.Contains(prefix + k)))
            .OrderBy(k => k, StringComparer.Ordinal)
            .ToList();

        var bodyMissing = missing.Where(m => !model.HeadPrefixes.Any(h => m.StartsWith(h, StringComparison.Ordinal))).ToList();
        if (bodyMissing.Count > 0 && bodyMissing.Count == missing.Count && used.Count == 0)
        {
            throw new InvalidDataException(
                $"None of the {stateDict.Count} tensors in {source} matches a {model.Config.Family} model (e.g. '{stateDict.Keys.FirstOrDefault()}' vs '{parameters.Keys.First()}'). Check that the weights belong to the config.json beside them.");
        }

        return new LoadReport(source, missing, unexpected, mismatched);
    }

    /// <summary>Buffers HuggingFace recomputes rather than loads (older checkpoints still carry them).</summary>
    private static bool IsNonPersistentBuffer(string key) =>
        key.EndsWith("embeddings.position_ids", StringComparison.Ordinal)
        || key.EndsWith(".attn.bias", StringComparison.Ordinal)
        || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal);
}
