#!/usr/bin/env python3
"""Extract API v2.0 page descriptions from microsoft/BCApps AL sources, mechanically.

    python3 extract_bc_pages.py business-central APIV2Customers APIV2Vendors ...

Needs a git mirror of microsoft/BCApps (REPO below; the commit read is recorded in each file).
Wrote the master-data pages (customers ... items, enums-part1.yaml); the document pages were read
by hand (their buffers need the codeunits that fill them, see their notes).
"""
import re, subprocess, sys, yaml, os
REPO=os.environ.get('BCAPPS_MIRROR', '/work/.mirror/microsoft+BCApps/repo')
COMMIT=subprocess.check_output(['git','-C',REPO,'rev-parse','HEAD']).decode().strip()
FILES=subprocess.check_output(['git','-C',REPO,'ls-tree','-r','--name-only','HEAD','src/Layers/W1/BaseApp','src/Apps/W1/APIV2']).decode().split('\n')
def show(p): return subprocess.check_output(['git','-C',REPO,'show','HEAD:'+p]).decode('utf-8-sig')
def unq(s): s=s.strip(); return s[1:-1] if s.startswith('"') else s
def block(text, i):
    """text[i] == '{': return the block's inner text."""
    d=0
    for j in range(i,len(text)):
        if text[j]=='{': d+=1
        elif text[j]=='}':
            d-=1
            if d==0: return text[i+1:j]
    return text[i+1:]
def depth1(inner):
    """Properties at depth 0 of a block (not inside triggers' begin/end)."""
    out=[]; d=0
    for line in inner.split('\n'):
        l=line.strip()
        if re.match(r'^trigger\b',l) or re.match(r'^(begin)\b',l): d+=1 if l.startswith('begin') else 0
        if re.match(r'^end;?$',l) and d>0: d-=1; continue
        if d==0: out.append(l)
    return out
_tables={}
def table(name):
    if name in _tables: return _tables[name]
    pat=re.compile(r'^table \d+ "?%s"?\s*$'%re.escape(name),re.M)
    for f in FILES:
        if f.endswith('.Table.al') and '/BaseApp/' in f:
            t=show(f) if name.replace(' ','').replace('.','').replace('/','').lower()[:12] in f.replace(' ','').lower() else None
            if t and pat.search(t):
                _tables[name]=(f,t); return _tables[name]
    for f in FILES:
        if f.endswith('.Table.al'):
            t=show(f)
            if pat.search(t): _tables[name]=(f,t); return _tables[name]
    _tables[name]=(None,None); return _tables[name]
def table_field(tname, fname):
    path,t=table(tname)
    if not t: return None
    for m in re.finditer(r'field\((\d+);\s*("[^"]+"|[^;\n]+);\s*([^)\n]+)\)\s*\n\s*\{', t):
        if unq(m.group(2))==fname:
            ty=m.group(3).strip()
            inner=block(t,t.index('{',m.end()-1))
            flow='FieldClass = FlowField' in inner
            opts=re.search(r'OptionMembers\s*=\s*([^;]+);',inner)
            return ty,flow,(opts.group(1) if opts else None),path
    return None
_enums={}
def enum_values(name):
    if name in _enums: return _enums[name]
    pat=re.compile(r'^enum \d+ "?%s"?'%re.escape(name),re.M)
    for f in FILES:
        if f.endswith('.Enum.al'):
            t=show(f)
            if pat.search(t):
                vals=[(int(m.group(1)),unq(m.group(2))) for m in re.finditer(r'value\((\d+);\s*("[^"]*"|[^)]+)\)',t)]
                _enums[name]=(f,vals); return _enums[name]
    _enums[name]=(None,[]); return _enums[name]
def odata(n): return ''.join(c if c.isalnum() or c=='_' else ''.join('_x%04X_'%u for u in [ord(c)]) for c in n)
def simple(ty):
    t=ty.lower()
    if t.startswith('code') or t.startswith('text'):
        m=re.search(r'\[(\d+)\]',ty); return 'string',(int(m.group(1)) if m else None)
    for k,v in [('decimal','decimal'),('integer','integer'),('biginteger','integer'),('boolean','boolean'),('dateformula','dateformula'),('datetime','datetime'),('date','date'),('guid','guid'),('duration','duration'),('blob','stream'),('media','stream'),('option','enum'),('enum','enum')]:
        if t.startswith(k): return v,None
    return 'string',None
def page(path, enums):
    t=show(path)
    g=lambda k: (re.search(r'\b%s\s*=\s*([^;]+);'%k,t) or [None,None])[1]
    src=unq(g('SourceTable'))
    rep=t.index('repeater(')
    inner=block(t,t.index('{',rep))
    props={}
    for m in re.finditer(r'field\(("?[A-Za-z0-9_]+"?);\s*([^)]+)\)\s*\n\s*\{',inner):
        name=unq(m.group(1)); expr=m.group(2).strip()
        b=block(inner,inner.index('{',m.end()-1))
        top=depth1(b)
        editable=not any(re.match(r'Editable\s*=\s*false',l,re.I) for l in top)
        p={}
        if expr in ('Rec.SystemId','Rec.SystemModifiedAt','Rec.SystemCreatedAt'):
            p={'type':'guid' if expr.endswith('Id') else 'datetime','field':expr[4:]}
        elif expr.startswith('Rec.'):
            fname=unq(expr[4:])
            tf=table_field(src,fname)
            p['field']=fname
            if tf:
                ty,flow,opts,tpath=tf; st,ln=simple(ty)
                p={'type':st, **({'length':ln} if ln else {}), 'field':fname}
                if flow: editable=False; p['flowfield']=True
                if st=='enum':
                    key=re.sub(r'[^A-Za-z0-9]','',name)
                    ek=(src.replace(' ','')+name[0].upper()+name[1:])
                    if ty.lower().startswith('enum'):
                        en=unq(ty[4:].strip()); epath,vals=enum_values(en)
                    else:
                        epath=tpath; vals=[(i,unq(v)) for i,v in enumerate(opts.split(','))]
                        vals=[(i,v.strip() if v.strip() else ' ') for i,v in vals]; en=None
                    enums[ek]={'source':{'repo':'microsoft/BCApps','path':epath,'commit':COMMIT},
                               'values':[{'ordinal':i,'name':v,'json':odata(v)} for i,v in vals]}
                    p['enum']=ek
            else: p['type']='string'
        else:
            var=expr
            vm=re.search(r'\b%s\s*:\s*([^;]+);'%re.escape(var),t)
            st,ln=simple(vm.group(1)) if vm else ('string',None)
            p={'type':st,'field':var,'computed':'page variable'}
            # The table field the variable is written to or read from: `Rec.Validate("X", VAR)`,
            # `Rec."X" := ...VAR`, or `VAR := ...Rec."X"`.
            fm=(re.search(r'Rec\.Validate\(("[^"]+"|\w+),\s*%s\)'%re.escape(var),t)
                or re.search(r'Rec\.("[^"]+"|\w+)\s*:=[^;]*\b%s\b'%re.escape(var),t)
                or re.search(r'\b%s\s*:=[^;]*Rec\.("[^"]+"|\w+)'%re.escape(var),t))
            if fm: p['base_field']=unq(fm.group(1))
            if 'CurrencyCode' in var and 'TranslateNAVCurrencyCodeToCurrencyCode' in t:
                p['blank_reads_as_local_currency']=True
        if name=='id': editable=False
        if not editable: p['editable']=False
        props[name]=p
    allowed=lambda k: (g(k) or 'true').strip().lower()!='false'
    return {'entity_set':unq(g('EntitySetName').strip("'")),'entity':unq(g('EntityName').strip("'")),
            'source':{'repo':'microsoft/BCApps','path':path,'commit':COMMIT,'extracted_by':'tools: mechanical read of the page and its tables/enums'},
            'source_table':src,'base_table':src,'key':'id','insert':allowed('InsertAllowed'),'modify':allowed('ModifyAllowed'),'delete':allowed('DeleteAllowed'),
            'requires_filter':[], 'properties':props}
if __name__=='__main__':
    out=sys.argv[1]; enums={}
    for name in sys.argv[2:]:
        p='src/Apps/W1/APIV2/app/src/pages/%s.Page.al'%name
        d=page(p,enums)
        with open(os.path.join(out,d['entity_set']+'.yaml'),'w') as f:
            f.write('# Read mechanically from %s at %s (tests/servers/api/README.md).\n'%(p,COMMIT))
            yaml.safe_dump(d,f,sort_keys=False,allow_unicode=True,width=200)
        print(d['entity_set'],len(d['properties']))
    with open(os.path.join(out,'enums-part1.yaml'),'w') as f:
        f.write('# Enums of the master-data pages, read mechanically (tests/servers/api/README.md).\n')
        yaml.safe_dump({'enums':enums},f,sort_keys=False,allow_unicode=True,width=200)
