// Mirrors HuggingFace transformers' models/roberta/modeling_roberta.py: BERT's body (Bert.cs, with padding-offset
// positions in BertEmbeddings) under the key prefix "roberta", and RoBERTa's own heads.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>first token → dropout → dense → tanh → dropout → out_proj, as RobertaClassificationHead.</summary>
internal sealed class RobertaClassificationHead : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly Dropout dropout;
    private readonly Linear out_proj;

    /// <summary>Creates the head.</summary>
    /// <param name="config">A RoBERTa config; its labels size out_proj.</param>
    public RobertaClassificationHead(TransformerConfig config) : base(nameof(RobertaClassificationHead))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        dropout = nn.Dropout(config.ClassifierDropout);
        out_proj = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <summary>Logits from the first token.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens.</param>
    /// <returns>(B, num_labels).</returns>
    public override Tensor forward(Tensor hidden, Tensor attentionMask)
    {
        var first = dropout.call(Layers.FirstToken(hidden, attentionMask));
        return out_proj.call(dropout.call(dense.call(first).tanh()));
    }
}

/// <summary>RoBERTa body plus its classification head, as RobertaForSequenceClassification (no pooler).</summary>
internal sealed class RobertaForSequenceClassification : SequenceClassificationModel
{
    private readonly BertModel roberta;
    private readonly RobertaClassificationHead classifier;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A RoBERTa config.</param>
    public RobertaForSequenceClassification(TransformerConfig config) : base(nameof(RobertaForSequenceClassification), config)
    {
        roberta = new BertModel(config, addPoolingLayer: false);
        classifier = new RobertaClassificationHead(config);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["classifier."];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        roberta.call(inputIds, attentionMask, tokenTypeIds);

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        classifier.call(roberta.call(inputIds, attentionMask, tokenTypeIds), attentionMask);
}

/// <summary>dense → exact GELU → layer_norm → tied decoder + bias, as RobertaLMHead.</summary>
internal sealed class RobertaLMHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm layer_norm;
    private readonly Parameter bias;
    private readonly Parameter decoderWeight;

    /// <summary>Creates the head over the shared embeddings.</summary>
    /// <param name="config">The config.</param>
    /// <param name="wordEmbeddings">The word embeddings (vocab, H).</param>
    public RobertaLMHead(TransformerConfig config, Parameter wordEmbeddings) : base(nameof(RobertaLMHead))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        bias = new Parameter(zeros(config.VocabSize));
        RegisterComponents();
        decoderWeight = wordEmbeddings;
    }

    /// <summary>Vocabulary logits.</summary>
    /// <param name="hidden">(..., H).</param>
    /// <returns>(..., vocab).</returns>
    public override Tensor forward(Tensor hidden) =>
        // RobertaLMHead hard-codes the exact GELU, whatever hidden_act says.
        nn.functional.linear(layer_norm.call(nn.functional.gelu(dense.call(hidden))), decoderWeight, bias);

    /// <summary>Releases this handle on the shared embedding matrix (the embedding keeps its own).</summary>
    /// <param name="disposing">Whether managed resources are released.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            decoderWeight.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>RoBERTa body plus its masked-LM head, as RobertaForMaskedLM.</summary>
internal sealed class RobertaForMaskedLM : LanguageModel
{
    private readonly BertModel roberta;
    private readonly RobertaLMHead lm_head;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A RoBERTa config.</param>
    public RobertaForMaskedLM(TransformerConfig config) : base(nameof(RobertaForMaskedLM), config)
    {
        roberta = new BertModel(config, addPoolingLayer: false);
        lm_head = new RobertaLMHead(config, roberta.WordEmbeddings);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["lm_head."];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        [("lm_head.decoder.weight", "roberta.embeddings.word_embeddings.weight"), ("lm_head.decoder.bias", "lm_head.bias")];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        roberta.call(inputIds, attentionMask, tokenTypeIds);

    /// <inheritdoc/>
    public override Tensor PredictTokens(Tensor hidden) => lm_head.call(hidden);
}
