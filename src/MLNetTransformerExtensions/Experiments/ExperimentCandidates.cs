using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Sources;

namespace MLNetTransformerExtensions.Experiments;

/// <summary>Ready-made candidate lists.</summary>
public static class ExperimentCandidates
{
    /// <summary>ML.NET's classic text pipelines: SDCA and L-BFGS maximum entropy, and LightGBM, each on <c>FeaturizeText</c>.</summary>
    /// <returns>The candidates, cheapest first.</returns>
    public static IReadOnlyList<ExperimentCandidate> Classic() =>
        [new SdcaMaximumEntropyCandidate(), new LbfgsMaximumEntropyCandidate(), new LightGbmCandidate()];

    /// <summary>
    /// The transformer candidates a model supports: a GPT-2 decoder gives a head and a prompt candidate; an encoder a
    /// head candidate, plus a prompt (PET) candidate when its checkpoint keeps the masked-LM head, and a SetFit and an
    /// embedding + L-BFGS candidate when it is a sentence encoder (sentence-transformers' pooling files, as the built-in
    /// encoders have); BART a head and a text-to-text candidate, T5 a text-to-text candidate. Encoder-decoders join only
    /// when named here (no built-in one).
    /// </summary>
    /// <param name="model">A model folder, a built-in model (<c>builtin:...</c>) or a HuggingFace hub id.</param>
    /// <param name="hub">Where hub ids are downloaded from; null reads huggingface_hub's environment variables.</param>
    /// <param name="cancellationToken">Stops a download.</param>
    /// <returns>The candidates.</returns>
    /// <exception cref="ArgumentException">The name is neither an existing folder, a built-in model, nor a well-formed hub id.</exception>
    /// <exception cref="HubException">The hub model cannot be fetched.</exception>
    public static IReadOnlyList<ExperimentCandidate> ForModel(string model, HubOptions? hub = null, CancellationToken cancellationToken = default)
    {
        CheckModelName(model);
        var folder = ModelLocator.Resolve(model, hub, cancellationToken: cancellationToken);
        var family = TransformerConfig.FromFolder(folder).Family;
        if (family == ModelFamily.T5)
        {
            return [new TransformerCandidate(model, TransformerCandidateKind.Seq2SeqPrompt, hub)]; // T5 has no classification head
        }

        if (family == ModelFamily.Bart)
        {
            return [new TransformerCandidate(model, TransformerCandidateKind.Seq2SeqHead, hub), new TransformerCandidate(model, TransformerCandidateKind.Seq2SeqPrompt, hub)];
        }

        if (family == ModelFamily.Gpt2)
        {
            return [new TransformerCandidate(model, TransformerCandidateKind.DecoderHead, hub), new TransformerCandidate(model, TransformerCandidateKind.DecoderPrompt, hub)];
        }

        var encoderHead = new TransformerCandidate(model, TransformerCandidateKind.EncoderHead, hub);
        List<ExperimentCandidate> candidates = TransformerCandidate.HasMaskedLanguageModelHead(folder) == false
            ? [encoderHead]
            : [encoderHead, new TransformerCandidate(model, TransformerCandidateKind.EncoderPrompt, hub)];
        if (SentenceEmbeddingSettings.FromFolder(folder).Pooling is not null)
        {
            // A sentence encoder (its folder says how to pool): SetFit first, the candidate of choice with few labels,
            // then its frozen embeddings into a classic learner, cheap and often good enough.
            candidates.InsertRange(0, [new SetFitCandidate(model, hub), new SentenceEmbeddingCandidate(model, hub)]);
        }

        return candidates;
    }

    /// <summary>
    /// A chat model as a candidate, searched over demonstrations per class. Never part of <see cref="Default"/>: it joins
    /// only when given a client, since each trial sends one request per scored row.
    /// </summary>
    /// <param name="client">The client (for example <see cref="Training.ChatClients.CreateOpenAICompatible"/>); the caller disposes it.</param>
    /// <param name="options">The options every trial starts from; <see cref="ChatClassifierOptions.ModelId"/> is required.</param>
    /// <returns>The candidate.</returns>
    public static IReadOnlyList<ExperimentCandidate> Chat(Microsoft.Extensions.AI.IChatClient client, ChatClassifierOptions options) => [new ChatCandidate(client, options)];

    /// <summary>The classic candidates, then those of the built-in encoder (<see cref="BuiltinModels.DefaultName"/>) and decoder (<see cref="BuiltinModels.DecoderName"/>).</summary>
    /// <returns>The candidates.</returns>
    public static IReadOnlyList<ExperimentCandidate> Default() =>
        [.. Classic(), .. ForModel(BuiltinModels.DefaultName), .. ForModel(BuiltinModels.DecoderName)];

    /// <summary>
    /// Refuses a model name before anything trains: it must be an existing folder, a known built-in model, or a
    /// well-formed hub id (<c>name</c> or <c>owner/name</c>, optionally <c>@revision</c>).
    /// </summary>
    /// <param name="model">The name.</param>
    /// <exception cref="ArgumentException">The name is none of these; the message names it and says why.</exception>
    public static void CheckModelName(string model)
    {
        if (string.IsNullOrWhiteSpace(model))
        {
            throw new ArgumentException("A model name is empty; give a model folder, a built-in model or a HuggingFace hub id.", nameof(model));
        }

        if (Directory.Exists(model))
        {
            return;
        }

        if (BuiltinModels.IsBuiltin(model))
        {
            try
            {
                BuiltinModels.Describe(model);
                return;
            }
            catch (BuiltinModelException e)
            {
                throw new ArgumentException(e.Message, nameof(model), e);
            }
        }

        var pathLike = Path.IsPathRooted(model) || model[0] is '.' or '~' || model.Contains('\\', StringComparison.Ordinal) || model.EndsWith('/');
        if (pathLike || File.Exists(model))
        {
            throw new ArgumentException($"'{model}' is not an existing model folder (nor a built-in model or a HuggingFace hub id).", nameof(model));
        }

        if (!HubReference.TryParse(model, out _, out var problem))
        {
            throw new ArgumentException($"'{model}' is neither an existing model folder, a built-in model ({string.Join(", ", BuiltinModels.Names)}) nor a HuggingFace hub id: {problem}.", nameof(model));
        }
    }
}
